package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
	"time"

	"github.com/parley-chat/parley/store"
)

// chunk is the chunk size both engines use (GridFS's default, and SQLite's
// file_chunks rows). The suite only uses it to aim at chunk boundaries; an
// engine with another chunk size still passes, it is just probed less sharply.
const chunk = 255 << 10

var errBoom = errors.New("storetest: reader failed")

func randomBytes(n int, seed uint64) []byte {
	var key [32]byte
	key[0], key[1] = byte(seed), byte(seed>>8)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}

func newFile(kind string, created time.Duration) store.File {
	return store.File{
		ID:          store.NewID(),
		OwnerID:     store.NewID(),
		Name:        "photo of the cat.jpg",
		Size:        -1, // CreateFile must set it from the bytes it read
		ContentType: "image/jpeg",
		Kind:        kind,
		CreatedAt:   at(created),
	}
}

func createFile(t *testing.T, s store.Store, f store.File, data []byte) store.File {
	t.Helper()
	must(t, "CreateFile", s.CreateFile(t.Context(), &f, bytes.NewReader(data)))
	if f.Size != int64(len(data)) {
		t.Fatalf("CreateFile set Size = %d, want %d", f.Size, len(data))
	}
	return f
}

func readFile(t *testing.T, s store.Store, id string) []byte {
	t.Helper()
	r, err := s.OpenFile(t.Context(), id)
	must(t, "OpenFile", err)
	defer r.Close()
	data, err := io.ReadAll(r)
	must(t, "reading file", err)
	return data
}

func checkContent(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d bytes, want %d", what, len(got), len(want))
		return
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("%s: first difference at byte %d", what, i)
			return
		}
	}
}

// failAfter yields data and then fails, as an upload cut off mid-stream does.
func failAfter(data []byte) io.Reader {
	return io.MultiReader(bytes.NewReader(data), iotest.ErrReader(errBoom))
}

// wantNoFile asserts through the public interface alone that nothing of id
// is left: no metadata, no readable content, nothing for the orphan sweep,
// and no leftover chunks (a new file under the same id reads back exactly).
func wantNoFile(t *testing.T, s store.Store, id string) {
	t.Helper()
	_, err := s.FileByID(t.Context(), id)
	wantNotFound(t, "FileByID", err)
	r, err := s.OpenFile(t.Context(), id)
	if err == nil {
		r.Close()
	}
	wantNotFound(t, "OpenFile", err)
	orphans, err := s.UnattachedBefore(t.Context(), at(1000*time.Hour), 1000)
	must(t, "UnattachedBefore", err)
	for _, f := range orphans {
		if f.ID == id {
			t.Errorf("UnattachedBefore lists file %s that should not exist", id)
		}
	}

	f := newFile(store.FileAttachment, 0)
	f.ID = id
	small := []byte("a fresh file under a reused id")
	must(t, "CreateFile(reused id)", s.CreateFile(t.Context(), &f, bytes.NewReader(small)))
	checkContent(t, "content under reused id", readFile(t, s, id), small)
}

func testFiles(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("RoundTrip", func(t *testing.T) {
		cases := []struct {
			name  string
			size  int
			short bool // feed CreateFile short reads
		}{
			{"empty", 0, false},
			{"one byte", 1, false},
			{"chunk minus one", chunk - 1, false},
			{"exactly one chunk", chunk, false},
			{"chunk plus one", chunk + 1, true},
			{"exactly two chunks", 2 * chunk, true},
			{"a few MiB", 3<<20 + 777, false},
			{"a few MiB, short reads", 3<<20 + 777, true},
		}
		s := open(t)
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				data := randomBytes(tc.size, uint64(i))
				f := newFile(store.FileAttachment, time.Duration(i)*time.Second)
				var r io.Reader = bytes.NewReader(data)
				if tc.short {
					r = iotest.HalfReader(r)
				}
				must(t, "CreateFile", s.CreateFile(t.Context(), &f, r))
				if f.Size != int64(tc.size) {
					t.Errorf("CreateFile set Size = %d, want %d", f.Size, tc.size)
				}
				got, err := s.FileByID(t.Context(), f.ID)
				must(t, "FileByID", err)
				checkFile(t, "FileByID", got, f)
				checkContent(t, "OpenFile content", readFile(t, s, f.ID), data)
			})
		}
	})

	t.Run("Kinds", func(t *testing.T) {
		s := open(t)
		for _, kind := range []string{store.FileAttachment, store.FileAvatar} {
			f := createFile(t, s, newFile(kind, 0), []byte(kind))
			got, err := s.FileByID(t.Context(), f.ID)
			must(t, "FileByID", err)
			checkFile(t, "FileByID("+kind+")", got, f)
		}
		_, err := s.FileByID(t.Context(), store.NewID())
		wantNotFound(t, "FileByID(unknown)", err)
		_, err = s.OpenFile(t.Context(), store.NewID())
		wantNotFound(t, "OpenFile(unknown)", err)
	})

	t.Run("Seek", func(t *testing.T) {
		s := open(t)
		data := randomBytes(3*chunk+1000, 42)
		size := int64(len(data))
		f := createFile(t, s, newFile(store.FileAttachment, 0), data)

		t.Run("iotest", func(t *testing.T) {
			r, err := s.OpenFile(t.Context(), f.ID)
			must(t, "OpenFile", err)
			defer r.Close()
			if err := iotest.TestReader(r, data); err != nil {
				t.Error(err)
			}
		})

		t.Run("steps", func(t *testing.T) {
			r, err := s.OpenFile(t.Context(), f.ID)
			must(t, "OpenFile", err)
			defer r.Close()
			steps := []struct {
				name   string
				whence int
				target int64 // absolute position to land on
				read   int
			}{
				{"across first boundary", io.SeekStart, chunk - 10, 100},
				{"forward from current", io.SeekCurrent, 2*chunk - 50, 100},
				{"backward from current", io.SeekCurrent, chunk + 7, chunk + 1},
				{"stay put", io.SeekCurrent, 2*chunk + 8, 3},
				{"whole third chunk", io.SeekStart, 2 * chunk, chunk},
				{"from end", io.SeekEnd, size - 50, 50},
				{"back to start", io.SeekStart, 0, 10},
				{"middle of a chunk", io.SeekStart, chunk + chunk/2, 1},
				{"last byte", io.SeekEnd, size - 1, 1},
			}
			pos := int64(0)
			for _, st := range steps {
				offset := st.target
				switch st.whence {
				case io.SeekCurrent:
					offset = st.target - pos
				case io.SeekEnd:
					offset = st.target - size
				}
				got, err := r.Seek(offset, st.whence)
				if err != nil || got != st.target {
					t.Fatalf("%s: Seek(%d, %d) = %d, %v; want %d", st.name, offset, st.whence, got, err, st.target)
				}
				buf := make([]byte, st.read)
				if _, err := io.ReadFull(r, buf); err != nil {
					t.Fatalf("%s: reading %d bytes at %d: %v", st.name, st.read, st.target, err)
				}
				checkContent(t, st.name, buf, data[st.target:st.target+int64(st.read)])
				pos = st.target + int64(st.read)
			}

			// At the end: EOF, and the position is the size.
			if n, err := io.ReadFull(r, make([]byte, 1)); n != 0 || err != io.EOF {
				t.Errorf("read at end = %d, %v; want 0, io.EOF", n, err)
			}
			if got, err := r.Seek(0, io.SeekCurrent); err != nil || got != size {
				t.Errorf("Seek(0, SeekCurrent) at end = %d, %v; want %d", got, err, size)
			}
			if got, err := r.Seek(0, io.SeekEnd); err != nil || got != size {
				t.Errorf("Seek(0, SeekEnd) = %d, %v; want %d", got, err, size)
			}
			if n, err := io.ReadFull(r, make([]byte, 1)); n != 0 || err != io.EOF {
				t.Errorf("read after Seek(0, SeekEnd) = %d, %v; want 0, io.EOF", n, err)
			}
			if _, err := r.Seek(-1, io.SeekStart); err == nil {
				t.Error("Seek(-1, SeekStart) succeeded, want an error")
			}
			if _, err := r.Seek(-size-1, io.SeekEnd); err == nil {
				t.Error("Seek(-size-1, SeekEnd) succeeded, want an error")
			}
			// A refused seek leaves the reader usable.
			if got, err := r.Seek(5, io.SeekStart); err != nil || got != 5 {
				t.Fatalf("Seek(5, SeekStart) = %d, %v", got, err)
			}
			buf := make([]byte, 5)
			if _, err := io.ReadFull(r, buf); err != nil {
				t.Fatalf("read after refused seek: %v", err)
			}
			checkContent(t, "read after refused seek", buf, data[5:10])
		})

		t.Run("independent readers", func(t *testing.T) {
			r1, err := s.OpenFile(t.Context(), f.ID)
			must(t, "OpenFile", err)
			defer r1.Close()
			r2, err := s.OpenFile(t.Context(), f.ID)
			must(t, "OpenFile", err)
			defer r2.Close()
			if _, err := r1.Seek(2*chunk, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			b1, b2 := make([]byte, 64), make([]byte, 64)
			if _, err := io.ReadFull(r1, b1); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(r2, b2); err != nil {
				t.Fatal(err)
			}
			checkContent(t, "reader 1", b1, data[2*chunk:2*chunk+64])
			checkContent(t, "reader 2", b2, data[:64])
		})
	})

	t.Run("FailingReader", func(t *testing.T) {
		cases := []struct {
			name  string
			after int // bytes delivered before the failure
		}{
			{"fails at once", 0},
			{"fails within first chunk", chunk / 2},
			{"fails on a boundary", chunk},
			{"fails after some chunks", 2*chunk + 7},
		}
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := open(t)
				f := newFile(store.FileAttachment, 0)
				err := s.CreateFile(t.Context(), &f, failAfter(randomBytes(tc.after, uint64(i))))
				if !errors.Is(err, errBoom) {
					t.Fatalf("CreateFile with a failing reader: err = %v, want it to wrap the reader's error", err)
				}
				wantNoFile(t, s, f.ID)
			})
		}

		t.Run("context cancelled mid-stream", func(t *testing.T) {
			s := open(t)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			data := randomBytes(4*chunk, 7)
			// The request goes away after the first chunk has been read; the
			// rest of the body is still there to be read.
			r := io.MultiReader(
				bytes.NewReader(data[:chunk+10]),
				readerFunc(func(p []byte) (int, error) { cancel(); return 0, io.EOF }),
				bytes.NewReader(data[chunk+10:]),
			)
			f := newFile(store.FileAttachment, 0)
			if err := s.CreateFile(ctx, &f, r); err == nil {
				t.Fatal("CreateFile succeeded although its context was cancelled mid-stream")
			}
			wantNoFile(t, s, f.ID)
		})
	})

	t.Run("DuplicateID", func(t *testing.T) {
		s := open(t)
		data := randomBytes(2*chunk+100, 3)
		f := createFile(t, s, newFile(store.FileAttachment, 0), data)

		dup := newFile(store.FileAvatar, time.Hour)
		dup.ID = f.ID
		if err := s.CreateFile(t.Context(), &dup, bytes.NewReader(randomBytes(chunk+5, 4))); err == nil {
			t.Fatal("CreateFile with a taken id succeeded")
		}
		// The refused upload must not have touched the file already there.
		got, err := s.FileByID(t.Context(), f.ID)
		must(t, "FileByID", err)
		checkFile(t, "FileByID after refused duplicate", got, f)
		checkContent(t, "content after refused duplicate", readFile(t, s, f.ID), data)
	})

	t.Run("DeleteFile", func(t *testing.T) {
		s := open(t)
		data := randomBytes(2*chunk+100, 5)
		doomed := createFile(t, s, newFile(store.FileAttachment, 0), data)
		kept := createFile(t, s, newFile(store.FileAttachment, 0), data[:chunk+1])

		must(t, "DeleteFile", s.DeleteFile(t.Context(), doomed.ID))
		wantNotFound(t, "DeleteFile(again)", s.DeleteFile(t.Context(), doomed.ID))
		wantNotFound(t, "DeleteFile(unknown)", s.DeleteFile(t.Context(), store.NewID()))
		wantNoFile(t, s, doomed.ID)

		got, err := s.FileByID(t.Context(), kept.ID)
		must(t, "FileByID(kept)", err)
		checkFile(t, "kept file", got, kept)
		checkContent(t, "kept file content", readFile(t, s, kept.ID), data[:chunk+1])
	})

	t.Run("DeleteOrphanFile", func(t *testing.T) {
		s := open(t)
		mk := func(kind string, created time.Duration) store.File {
			return createFile(t, s, newFile(kind, created), randomBytes(300<<10, uint64(created))) // two chunks
		}
		orphan := mk(store.FileAttachment, time.Second)
		claimed := mk(store.FileAttachment, time.Second)
		avatar := mk(store.FileAvatar, time.Second)
		young := mk(store.FileAttachment, time.Minute)
		cutoff := at(10 * time.Second)

		// The sweep listed claimed as an orphan; a send claims it before the
		// delete lands: the conditional delete must leave it.
		listed, err := s.UnattachedBefore(t.Context(), cutoff, 10)
		must(t, "UnattachedBefore", err)
		if len(listed) != 2 {
			t.Fatalf("listed %d orphans, want 2", len(listed))
		}
		must(t, "MarkAttached", s.MarkAttached(t.Context(), []string{claimed.ID}))
		wantNotFound(t, "DeleteOrphanFile(claimed)", s.DeleteOrphanFile(t.Context(), claimed.ID, cutoff))
		checkContent(t, "claimed file", readFile(t, s, claimed.ID), randomBytes(300<<10, uint64(time.Second)))

		wantNotFound(t, "DeleteOrphanFile(avatar)", s.DeleteOrphanFile(t.Context(), avatar.ID, cutoff))
		wantNotFound(t, "DeleteOrphanFile(younger than the cut-off)", s.DeleteOrphanFile(t.Context(), young.ID, cutoff))
		wantNotFound(t, "DeleteOrphanFile(unknown)", s.DeleteOrphanFile(t.Context(), store.NewID(), cutoff))
		must(t, "DeleteOrphanFile(orphan)", s.DeleteOrphanFile(t.Context(), orphan.ID, cutoff))
		wantNotFound(t, "DeleteOrphanFile(again)", s.DeleteOrphanFile(t.Context(), orphan.ID, cutoff))
		wantNoFile(t, s, orphan.ID)
	})

	t.Run("UnattachedBefore", func(t *testing.T) {
		s := open(t)
		mk := func(kind string, created time.Duration) store.File {
			return createFile(t, s, newFile(kind, created), []byte("x"))
		}
		// Created out of age order so insertion order cannot pass for age.
		old2 := mk(store.FileAttachment, 2*time.Second)
		newer := mk(store.FileAttachment, 20*time.Second)
		old0 := mk(store.FileAttachment, 500*time.Millisecond)
		avatar := mk(store.FileAvatar, 0)
		edge := mk(store.FileAttachment, 10*time.Second)
		attached := mk(store.FileAttachment, time.Second)
		old1 := mk(store.FileAttachment, 1500*time.Millisecond)
		_ = avatar

		must(t, "MarkAttached", s.MarkAttached(t.Context(), []string{attached.ID, store.NewID()}))
		must(t, "MarkAttached(again)", s.MarkAttached(t.Context(), []string{attached.ID}))
		must(t, "MarkAttached(none)", s.MarkAttached(t.Context(), nil))

		all := map[string]store.File{}
		for _, f := range []store.File{old0, old1, old2, edge, newer} {
			all[f.ID] = f
		}
		cases := []struct {
			name   string
			before time.Time
			limit  int
			want   []store.File
		}{
			{"before cutoff", at(10 * time.Second), 10, []store.File{old0, old1, old2}},
			{"limit", at(10 * time.Second), 2, []store.File{old0, old1}},
			{"limit 1", at(10 * time.Second), 1, []store.File{old0}},
			{"cutoff is exclusive", at(1500 * time.Millisecond), 10, []store.File{old0}},
			{"nothing that old", at(0), 10, nil},
			{"everything", at(time.Hour), 10, []store.File{old0, old1, old2, edge, newer}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.UnattachedBefore(t.Context(), tc.before, tc.limit)
				must(t, "UnattachedBefore", err)
				fileID := func(f store.File) string { return f.ID }
				if g, w := ids(got, fileID), ids(tc.want, fileID); !slicesEqual(g, w) {
					t.Fatalf("UnattachedBefore = %v, want oldest first %v", names(got, all), names(tc.want, all))
				}
				for i := range got {
					checkFile(t, fmt.Sprintf("UnattachedBefore[%d]", i), &got[i], tc.want[i])
				}
			})
		}
	})
}

// names labels files by their age for readable failures.
func names(fs []store.File, all map[string]store.File) []string {
	out := []string{}
	for _, f := range fs {
		if g, ok := all[f.ID]; ok {
			out = append(out, g.CreatedAt.Sub(base).String())
		} else {
			out = append(out, "unexpected "+f.ID)
		}
	}
	return out
}

type readerFunc func(p []byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
