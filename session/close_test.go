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

// A session ended while the cache cannot be told starts a retry; Close
// stops it, so nothing touches the cache (or the store behind it) after
// shutdown, and the ended session stays refused on this node.
func TestManagerCloseStopsDeleteRetries(t *testing.T) {
	ctx := context.Background()
	cache := &downCache{MemoryCache: NewMemoryCache()}
	m := NewManager(newStore(t), cache, time.Hour, discardLog)
	uid := store.NewID()
	s, err := m.Create(ctx, uid, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.End(ctx, uid, s.ID); err != nil {
		t.Fatalf("End with the cache down: %v", err)
	}
	m.Close() // returns only once the retry has stopped
	after := cache.deletes.Load()
	if !errors.Is(m.Check(ctx, uid, s.ID), ErrEnded) {
		t.Fatal("the ended session is accepted after Close")
	}
	m.retries.Wait()
	if got := cache.deletes.Load(); got != after {
		t.Fatalf("the cache was asked to delete %d more times after Close", got-after)
	}
}
