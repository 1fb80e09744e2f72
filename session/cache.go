// Package session keeps sessions: the record in the store, and a cache in
// front of it (Redis across nodes, in-process on one node) so that checking
// a token costs no database round trip. The Manager is the one way in.
//
// # Revocation: the database is the truth
//
// A session ends in the database first; the cache only ever speeds up a
// "yes". Ending one (logout, logout-all, a session ended from another, a
// password change) goes:
//
//  1. a purge note (store.SessionPurge, pending) for each session is
//     written to the database;
//  2. the session records are deleted;
//  3. the cache entries are deleted, and the notes marked done.
//
// A node that dies between the steps, or a cache that cannot be reached at
// step 3, leaves pending notes: every node replays pending notes against
// the cache every SESSION_RECONCILE_INTERVAL (1s), until one succeeds.
//
// A cache can also lose deletes it acknowledged: Redis restarted from an
// older snapshot, or a replica promoted, comes back with entries that were
// deleted. The notes are kept (done) until their sessions would have
// expired, and a node trusts cache hits only while the cache's Epoch is
// one it has reconciled: RedisCache moves its epoch on every dial (any
// reconnect, so any restarted or failed-over server) and on every error.
// Until the node has replayed every note against the cache as it is now,
// its checks go to the database. A node that starts, or whose Redis
// stumbles, so never serves a stale "yes" from it; a hit is used only when
// the epoch did not move while it was read.
//
// The one window left is a partial partition: node A cannot reach Redis
// but node B can and never noticed. B trusts Redis until its next replay
// of pending notes, so A's logout reaches B within one reconcile interval
// (the contract's "within one second on every node").
package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
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
	// Epoch changes whenever the cache may have lost deletes (reconnects,
	// errors); see the package comment. A cache that cannot lose them
	// keeps one epoch forever.
	Epoch() uint64
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

// Epoch never moves: the in-process cache loses nothing it acknowledged.
func (m *MemoryCache) Epoch() uint64 { return 0 }

// RedisCache keeps `session:<sid>` (TTL = time left) and the set
// `user:<uid>:sessions`, as the contract names them.
type RedisCache struct {
	rdb   redis.UniversalClient
	epoch atomic.Uint64
}

// NewRedisCache returns a cache on rdb. It hooks rdb's dials: every new
// connection may reach a Redis that lost deletes (see Epoch).
func NewRedisCache(rdb redis.UniversalClient) *RedisCache {
	r := &RedisCache{rdb: rdb}
	rdb.AddHook(dialHook{r})
	return r
}

// Epoch moves on every dial and every failed command.
func (r *RedisCache) Epoch() uint64 { return r.epoch.Load() }

func (r *RedisCache) failed(err error) error {
	if err != nil && !errors.Is(err, redis.Nil) {
		r.epoch.Add(1)
	}
	return err
}

// dialHook moves the epoch before a new connection carries any command.
type dialHook struct{ r *RedisCache }

func (h dialHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		h.r.epoch.Add(1)
		return next(ctx, network, addr)
	}
}

func (h dialHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (h dialHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func sessionKey(sid string) string    { return "session:" + sid }
func userSetKey(userID string) string { return "user:" + userID + ":sessions" }

func (r *RedisCache) Get(ctx context.Context, sid string) (Entry, error) {
	raw, err := r.rdb.Get(ctx, sessionKey(sid)).Bytes()
	_ = r.failed(err)
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
	if _, err := pipe.Exec(ctx); r.failed(err) != nil {
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
	if _, err := pipe.Exec(ctx); r.failed(err) != nil {
		return fmt.Errorf("redis delete sessions: %w", err)
	}
	return nil
}

func (r *RedisCache) Ping(ctx context.Context) error { return r.failed(r.rdb.Ping(ctx).Err()) }
