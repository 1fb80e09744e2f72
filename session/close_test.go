package session

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chat/parley/store"
)

// downCache is a cache whose deletes fail, as when Redis is down, and that
// counts them.
type downCache struct {
	*MemoryCache
	deletes atomic.Int64
}

func (c *downCache) Delete(context.Context, string, ...string) error {
	c.deletes.Add(1)
	return errors.New("cache down")
}

// Epoch moves with every failed delete, as Cache requires.
func (c *downCache) Epoch() uint64 { return uint64(c.deletes.Load()) }

// A session ended while the cache cannot be told leaves a pending purge
// note that the reconcile loop keeps replaying; Close stops the loop, so
// nothing touches the cache (or the store behind it) after shutdown, the
// note stays for the next node, and the ended session stays refused.
func TestManagerCloseStopsReconciles(t *testing.T) {
	ctx := context.Background()
	cache := &downCache{MemoryCache: NewMemoryCache()}
	st := newStore(t)
	m := NewManager(st, cache, time.Hour, discardLog)
	m.Start(10 * time.Millisecond)
	uid := store.NewID()
	s, err := m.Create(ctx, uid, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.End(ctx, uid, s.ID); err != nil {
		t.Fatalf("End with the cache down: %v", err)
	}
	m.Close() // returns only once the loop has stopped
	after := cache.deletes.Load()
	if !errors.Is(m.Check(ctx, uid, s.ID), ErrEnded) {
		t.Fatal("the ended session is accepted after Close")
	}
	if ps, err := st.SessionPurges(ctx, "", 10, true); err != nil || len(ps) != 1 || ps[0].SessionID != s.ID {
		t.Fatalf("pending purge notes after Close: %v %v", ps, err)
	}
	if got := cache.deletes.Load(); got != after {
		t.Fatalf("the cache was asked to delete %d more times after Close", got-after)
	}
}
