package files

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/store"
)

// fakeFiles is an in-memory OrphanStore that lists as the engines do:
// attachment-kind, never attached, created before t, oldest first.
type fakeFiles struct {
	mu       sync.Mutex
	files    map[string]*fakeFile
	failOn   string          // DeleteFile of this id fails
	ghosts   map[string]bool // listed, but DeleteFile says not found
	listed   chan struct{}   // receives after each UnattachedBefore, if set
	listings int
}

type fakeFile struct {
	store.File
	attached bool
}

func newFakeFiles() *fakeFiles {
	return &fakeFiles{files: map[string]*fakeFile{}, ghosts: map[string]bool{}}
}

func (s *fakeFiles) add(kind string, created time.Time, attached bool) string {
	id := store.NewID()
	s.files[id] = &fakeFile{File: store.File{ID: id, Kind: kind, CreatedAt: created}, attached: attached}
	return id
}

func (s *fakeFiles) UnattachedBefore(_ context.Context, t time.Time, limit int) ([]store.File, error) {
	s.mu.Lock()
	var out []store.File
	for _, f := range s.files {
		if f.Kind == store.FileAttachment && !f.attached && f.CreatedAt.Before(t) {
			out = append(out, f.File)
		}
	}
	s.listings++
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	if len(out) > limit {
		out = out[:limit]
	}
	if s.listed != nil {
		s.listed <- struct{}{}
	}
	return out, nil
}

// DeleteOrphanFile deletes only what is still an old unattached
// attachment, as the stores' conditional delete does.
func (s *fakeFiles) DeleteOrphanFile(_ context.Context, id string, t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id == s.failOn {
		return errors.New("disk on fire")
	}
	f, ok := s.files[id]
	if !ok || s.ghosts[id] || f.attached || f.Kind != store.FileAttachment || !f.CreatedAt.Before(t) {
		return fmt.Errorf("file %s: %w", id, store.ErrNotFound)
	}
	delete(s.files, id)
	return nil
}

func (s *fakeFiles) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.files[id]
	return ok
}

func TestOrphanSweepCutoff(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	s := newFakeFiles()
	old := s.add(store.FileAttachment, now.Add(-25*time.Hour), false)
	edge := s.add(store.FileAttachment, now.Add(-24*time.Hour), false) // not before the cut-off
	fresh := s.add(store.FileAttachment, now.Add(-time.Hour), false)
	attached := s.add(store.FileAttachment, now.Add(-48*time.Hour), true)
	avatar := s.add(store.FileAvatar, now.Add(-48*time.Hour), false)

	n, err := SweepOrphans(t.Context(), s, now.Add(-24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("SweepOrphans = %d, %v; want 1, nil", n, err)
	}
	if s.has(old) {
		t.Error("the unattached file older than the cut-off is still there")
	}
	for name, id := range map[string]string{"edge": edge, "fresh": fresh, "attached": attached, "avatar": avatar} {
		if !s.has(id) {
			t.Errorf("the %s file was swept", name)
		}
	}
}

func TestOrphanSweepBatches(t *testing.T) {
	now := time.Now()
	s := newFakeFiles()
	const total = 2*sweepBatch + 37
	for i := range total {
		s.add(store.FileAttachment, now.Add(-time.Duration(i+1)*time.Minute), false)
	}
	keep := s.add(store.FileAttachment, now.Add(time.Minute), false)
	n, err := SweepOrphans(t.Context(), s, now)
	if err != nil || n != total {
		t.Fatalf("SweepOrphans = %d, %v; want %d, nil", n, err, total)
	}
	if len(s.files) != 1 || !s.has(keep) {
		t.Fatalf("%d files left, want only the one newer than the cut-off", len(s.files))
	}
}

func TestOrphanSweepGoneFiles(t *testing.T) {
	now := time.Now()
	s := newFakeFiles()
	// A full batch that the store keeps listing but cannot find: the sweep
	// must end rather than ask for the same batch forever.
	for i := range sweepBatch {
		s.ghosts[s.add(store.FileAttachment, now.Add(-time.Duration(i+1)*time.Hour), false)] = true
	}
	n, err := SweepOrphans(t.Context(), s, now)
	if err != nil || n != 0 {
		t.Fatalf("SweepOrphans = %d, %v; want 0, nil", n, err)
	}
	if s.listings != 1 {
		t.Fatalf("listed %d times, want 1", s.listings)
	}
}

func TestOrphanSweepStopsOnFailure(t *testing.T) {
	now := time.Now()
	s := newFakeFiles()
	first := s.add(store.FileAttachment, now.Add(-3*time.Hour), false)
	s.failOn = s.add(store.FileAttachment, now.Add(-2*time.Hour), false)
	last := s.add(store.FileAttachment, now.Add(-time.Hour), false)
	n, err := SweepOrphans(t.Context(), s, now)
	if err == nil || n != 1 {
		t.Fatalf("SweepOrphans = %d, %v; want 1 and an error", n, err)
	}
	if s.has(first) || !s.has(last) {
		t.Fatal("want the file before the failure removed and the one after it kept for the next sweep")
	}
}

func TestOrphanSweeperRunsUntilCancelled(t *testing.T) {
	s := newFakeFiles()
	s.listed = make(chan struct{})
	doomed := s.add(store.FileAttachment, time.Now().Add(-2*time.Hour), false)
	young := s.add(store.FileAttachment, time.Now(), false)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		RunSweeper(ctx, s, time.Hour, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
		close(done)
	}()
	// The first sweep runs at once, not an interval later.
	<-s.listed
	cancel()
	<-done
	if s.has(doomed) || !s.has(young) {
		t.Fatal("the first sweep did not remove the file older than the TTL, or removed the young one")
	}
	if len(s.files) != 1 {
		t.Fatalf("%d files left, want 1", len(s.files))
	}
}
