// Package session keeps sessions: the record in the store, and a cache in
// front of it (Redis across nodes, in-process on one node) so that checking
// a token costs no database round trip.
package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrMiss means the cache does not hold the session; the store decides.
var ErrMiss = errors.New("session cache miss")

// Entry is what the cache knows of a session.
type Entry struct {
	SessionID string    `json:"-"`
	UserID    string    `json:"uid"`
	ExpiresAt time.Time `json:"exp"`
}

// Cache is the fast path for session checks.
type Cache interface {
	Get(ctx context.Context, sid string) (Entry, error)
	// Put caches e until it expires.
	Put(ctx context.Context, e Entry) error
	// Delete drops the sessions of one user.
	Delete(ctx context.Context, userID string, sids ...string) error
	Ping(ctx context.Context) error
}

// MemoryCache is the single-node cache.
type MemoryCache struct {
	mu      sync.RWMutex
	entries map[string]Entry
	now     func() time.Time
}

// NewMemoryCache returns an in-process cache.
func NewMemoryCache() *MemoryCache {
	return &MemoryCache{entries: map[string]Entry{}, now: time.Now}
}

func (m *MemoryCache) Get(_ context.Context, sid string) (Entry, error) {
	m.mu.RLock()
	e, ok := m.entries[sid]
	m.mu.RUnlock()
	if !ok || !m.now().Before(e.ExpiresAt) {
		return Entry{}, ErrMiss
	}
	return e, nil
}

func (m *MemoryCache) Put(_ context.Context, e Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if len(m.entries) >= 4096 && len(m.entries)%4096 == 0 {
		for k, v := range m.entries { // expired tokens are never asked for again
			if !now.Before(v.ExpiresAt) {
				delete(m.entries, k)
			}
		}
	}
	m.entries[e.SessionID] = e
	return nil
}

func (m *MemoryCache) Delete(_ context.Context, _ string, sids ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, sid := range sids {
		delete(m.entries, sid)
	}
	return nil
}

func (m *MemoryCache) Ping(context.Context) error { return nil }

// RedisCache keeps `session:<sid>` (TTL = time left) and the set
// `user:<uid>:sessions`, as the contract names them.
type RedisCache struct{ rdb redis.UniversalClient }

// NewRedisCache returns a cache on rdb.
func NewRedisCache(rdb redis.UniversalClient) *RedisCache { return &RedisCache{rdb: rdb} }

func sessionKey(sid string) string    { return "session:" + sid }
func userSetKey(userID string) string { return "user:" + userID + ":sessions" }

func (r *RedisCache) Get(ctx context.Context, sid string) (Entry, error) {
	raw, err := r.rdb.Get(ctx, sessionKey(sid)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Entry{}, ErrMiss
	}
	if err != nil {
		return Entry{}, fmt.Errorf("redis get session: %w", err)
	}
	var e Entry
	if err := json.Unmarshal(raw, &e); err != nil {
		return Entry{}, fmt.Errorf("decode cached session: %w", err)
	}
	e.SessionID = sid
	return e, nil
}

func (r *RedisCache) Put(ctx context.Context, e Entry) error {
	ttl := time.Until(e.ExpiresAt)
	if ttl <= 0 {
		return nil
	}
	raw, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode session: %w", err)
	}
	pipe := r.rdb.TxPipeline()
	pipe.Set(ctx, sessionKey(e.SessionID), raw, ttl)
	pipe.SAdd(ctx, userSetKey(e.UserID), e.SessionID)
	// The set lives as long as the user's longest session.
	pipe.ExpireGT(ctx, userSetKey(e.UserID), ttl)
	pipe.ExpireNX(ctx, userSetKey(e.UserID), ttl)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redis put session: %w", err)
	}
	return nil
}

func (r *RedisCache) Delete(ctx context.Context, userID string, sids ...string) error {
	if len(sids) == 0 {
		return nil
	}
	keys := make([]string, len(sids))
	members := make([]any, len(sids))
	for i, sid := range sids {
		keys[i] = sessionKey(sid)
		members[i] = sid
	}
	pipe := r.rdb.TxPipeline()
	pipe.Del(ctx, keys...)
	pipe.SRem(ctx, userSetKey(userID), members...)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redis delete sessions: %w", err)
	}
	return nil
}

func (r *RedisCache) Ping(ctx context.Context) error { return r.rdb.Ping(ctx).Err() }
