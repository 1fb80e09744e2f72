package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/parley-chat/parley/store"
	"github.com/parley-chat/parley/store/storetest"
)

func openTemp(t testing.TB) *Store {
	t.Helper()
	// A subdirectory that does not exist yet: Open must create it.
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "data", "parley.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

func TestReopenKeepsData(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "parley.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	u := store.User{ID: store.NewID(), Username: "alice", Email: "alice@example.com", DisplayName: "Alice",
		CreatedAt: time.UnixMilli(1_700_000_000_123).UTC()}
	c := store.Chat{ID: store.NewID(), Type: store.ChatGroup, Name: "g",
		Members: []store.Member{{UserID: u.ID, Role: store.RoleOwner}}}
	c.DirectKey = "group:" + c.ID
	m := &store.Message{ID: store.NewID(), ChatID: c.ID, Seq: 1, SenderID: u.ID, Text: "hello",
		Attachments: []store.Attachment{{ID: store.NewID(), Name: "a.txt", Size: 3}}}
	data := bytes.Repeat([]byte("0123456789"), chunkSize/5) // two chunks
	f := store.File{ID: store.NewID(), OwnerID: u.ID, Name: "f", Kind: store.FileAttachment}
	if err := s.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateChat(ctx, &c); err != nil {
		t.Fatal(err)
	}
	if _, err := s.InsertMessages(ctx, []*store.Message{m}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateFile(ctx, &f, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	gotU, err := s.UserByLogin(ctx, "alice")
	if err != nil || !gotU.CreatedAt.Equal(u.CreatedAt) {
		t.Errorf("user after reopen = %+v, %v", gotU, err)
	}
	gotC, err := s.ChatByID(ctx, c.ID)
	if err != nil || len(gotC.Members) != 1 {
		t.Errorf("chat after reopen = %+v, %v", gotC, err)
	}
	gotM, err := s.LastMessage(ctx, c.ID)
	if err != nil || gotM.ID != m.ID || len(gotM.Attachments) != 1 {
		t.Errorf("message after reopen = %+v, %v", gotM, err)
	}
	r, err := s.OpenFile(ctx, f.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("file after reopen: %d bytes, %v; want %d bytes", len(got), err, len(data))
	}
	// Reopening an up-to-date database applies no migration twice.
	var version int
	if err := s.r.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil || version != len(migrations) {
		t.Errorf("user_version = %d, %v; want %d", version, err, len(migrations))
	}
}

func TestPragmas(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	for _, tc := range []struct {
		db     *sql.DB
		pragma string
		want   string
	}{
		{s.w, "journal_mode", "wal"},
		{s.w, "foreign_keys", "1"},
		{s.w, "synchronous", "1"}, // NORMAL
		{s.w, "busy_timeout", fmt.Sprint(busyTimeout.Milliseconds())},
		{s.r, "foreign_keys", "1"},
		{s.r, "query_only", "1"},
		{s.r, "journal_mode", "wal"},
	} {
		var got string
		if err := tc.db.QueryRowContext(ctx, "PRAGMA "+tc.pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", tc.pragma, err)
		}
		if got != tc.want {
			t.Errorf("PRAGMA %s = %q, want %q", tc.pragma, got, tc.want)
		}
	}
	if _, err := s.r.ExecContext(ctx, `DELETE FROM users`); err == nil {
		t.Error("the read pool accepted a write")
	}
}

// TestFailedUploadLeavesNoRows checks the tables directly, which the
// engine-neutral suite cannot.
func TestFailedUploadLeavesNoRows(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	boom := errors.New("boom")
	f := store.File{ID: store.NewID(), Kind: store.FileAttachment}
	body := io.MultiReader(bytes.NewReader(make([]byte, 3*chunkSize+10)), iotest.ErrReader(boom))
	if err := s.CreateFile(ctx, &f, body); !errors.Is(err, boom) {
		t.Fatalf("CreateFile = %v, want %v", err, boom)
	}
	assertEmptyFiles(t, s)
}

// TestOpenSweepsUnfinishedUploads simulates a process killed mid-upload.
func TestOpenSweepsUnfinishedUploads(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "parley.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	id := store.NewID()
	if _, err := s.w.ExecContext(ctx, `
		INSERT INTO files (id, owner_id, name, content_type, kind, chunk_size, created_at)
		VALUES (?, '', '', '', 'attachment', ?, 0)`, id, chunkSize); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO file_chunks (file_id, n, data) VALUES (?, 0, x'00')`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FileByID(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("FileByID(incomplete) = %v, want ErrNotFound", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	assertEmptyFiles(t, s)
}

func assertEmptyFiles(t *testing.T, s *Store) {
	t.Helper()
	for _, table := range []string{"files", "file_chunks"} {
		var n int
		if err := s.r.QueryRowContext(t.Context(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s holds %d rows, want 0", table, n)
		}
	}
}

// TestReadsDoNotWaitForWriter holds the write connection in an open
// transaction and reads meanwhile: with a shared pool the read would queue.
func TestReadsDoNotWaitForWriter(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	u := store.User{ID: store.NewID(), Username: "alice", Email: "a@example.com"}
	if err := s.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE users SET display_name = 'x'`); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	got, err := s.UserByID(rctx, u.ID)
	if err != nil {
		t.Fatalf("read while a write transaction is open: %v", err)
	}
	if got.DisplayName != "" {
		t.Errorf("read saw uncommitted display name %q", got.DisplayName)
	}
}

// TestConflictIDs covers the one conflict the contract suite leaves out: a
// reused record id, reported by SQLite as a PRIMARY KEY failure.
func TestConflictIDs(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	id := store.NewID()
	u := store.User{ID: id, Username: "a", Email: "a@example.com"}
	m := &store.Message{ID: id, ChatID: "c", Seq: 1, SenderID: "u"}
	c := store.Chat{ID: id, Type: store.ChatGroup, DirectKey: "group:" + id}
	ss := store.Session{ID: id}
	for _, step := range []struct {
		name   string
		create func() error
	}{
		{"user", func() error { return s.CreateUser(ctx, &u) }},
		{"message", func() error { _, err := s.InsertMessages(ctx, []*store.Message{m}); return err }},
		{"chat", func() error { return s.CreateChat(ctx, &c) }},
		{"session", func() error { return s.CreateSession(ctx, &ss) }},
	} {
		if err := step.create(); err != nil {
			t.Fatalf("first %s: %v", step.name, err)
		}
	}
	u.Username, u.Email = "b", "b@example.com"
	m2 := *m
	m2.Seq = 2
	c.DirectKey = "group:other"
	for _, step := range []struct {
		name   string
		create func() error
	}{
		{"user", func() error { return s.CreateUser(ctx, &u) }},
		{"message", func() error { _, err := s.InsertMessages(ctx, []*store.Message{&m2}); return err }},
		{"chat", func() error { return s.CreateChat(ctx, &c) }},
		{"session", func() error { return s.CreateSession(ctx, &ss) }},
	} {
		if got := store.ConflictOn(step.create()); got != store.ConflictID {
			t.Errorf("%s with a taken id: conflict on %q, want %q", step.name, got, store.ConflictID)
		}
	}
}

func benchmarkInsert(b *testing.B, batch int) {
	s := openTemp(b)
	ctx := context.Background()
	chat := store.NewID()
	sender := store.NewID()
	seq := int64(0)
	msgs := make([]*store.Message, batch)
	iters := 0
	b.ReportAllocs()
	for b.Loop() {
		iters++
		for i := range msgs {
			seq++
			msgs[i] = &store.Message{
				ID: store.NewID(), ChatID: chat, Seq: seq, SenderID: sender,
				Text: "a typical short chat message", ClientMsgID: fmt.Sprint("c", seq),
				CreatedAt: time.Now(),
			}
		}
		if n, err := s.InsertMessages(ctx, msgs); n != batch || err != nil {
			b.Fatalf("InsertMessages = %d, %v", n, err)
		}
	}
	b.ReportMetric(float64(iters*batch)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkInsertMessages compares one commit per message with group
// commit; msgs/s is the figure to compare.
func BenchmarkInsertMessages(b *testing.B) {
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchmarkInsert(b, batch) })
	}
}

// BenchmarkHandshakeReads runs the store's part of an authenticated socket
// handshake, one user's: the session lookup, the user's chats with their
// members (2,000 users in groups of ten), and lastSeenAt stored.
//
//	go test -run '^$' -bench HandshakeReads -benchmem ./store/sqlite/
func BenchmarkHandshakeReads(b *testing.B) {
	s := openTemp(b)
	ctx := context.Background()
	const users, group = 2000, 10
	ids := make([]string, users)
	for i := range ids {
		ids[i] = store.NewID()
		u := store.User{ID: ids[i], Username: fmt.Sprint("u", i), Email: fmt.Sprint("u", i, "@example.com"), CreatedAt: time.Now()}
		if err := s.CreateUser(ctx, &u); err != nil {
			b.Fatal(err)
		}
		ss := store.Session{ID: ids[i], UserID: ids[i], CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
		if err := s.CreateSession(ctx, &ss); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < users; i += group {
		c := store.Chat{ID: store.NewID(), Type: store.ChatGroup, Name: "g", CreatedAt: time.Now()}
		c.DirectKey = "group:" + c.ID
		for _, id := range ids[i : i+group] {
			c.Members = append(c.Members, store.Member{UserID: id, Role: store.RoleMember})
		}
		if err := s.CreateChat(ctx, &c); err != nil {
			b.Fatal(err)
		}
	}
	steps := []struct {
		name string
		run  func(id string) error
	}{
		{"session", func(id string) error { _, err := s.SessionByID(ctx, id); return err }},
		{"chats", func(id string) error {
			chats, err := s.ChatsByMember(ctx, id)
			if err == nil && (len(chats) != 1 || len(chats[0].Members) != group) {
				err = fmt.Errorf("%d chats", len(chats))
			}
			return err
		}},
		{"lastseen", func(id string) error { return s.SetLastSeen(ctx, id, time.Now()) }},
	}
	for _, step := range steps {
		b.Run(step.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			cpu0 := cpuTime()
			for b.Loop() {
				if err := step.run(ids[i%users]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			// The process's CPU, steadier than ns/op on a shared machine.
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
