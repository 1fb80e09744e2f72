package auth

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Counter counts failures per key in a fixed window that starts at the
// first failure. Across nodes it must be shared, hence Redis.
type Counter interface {
	// Incr adds one failure to key and returns the count in the window.
	Incr(ctx context.Context, key string, window time.Duration) (int64, error)
	// Count returns the failures in key's window and the time left in it.
	Count(ctx context.Context, key string) (int64, time.Duration, error)
	Reset(ctx context.Context, key string) error
}

// MemoryCounter is the single-node Counter.
type MemoryCounter struct {
	mu      sync.Mutex
	now     func() time.Time
	entries map[string]memoryCount
}

type memoryCount struct {
	n       int64
	expires time.Time
}

// NewMemoryCounter returns an in-process Counter.
func NewMemoryCounter() *MemoryCounter {
	return &MemoryCounter{now: time.Now, entries: map[string]memoryCount{}}
}

func (m *MemoryCounter) Incr(_ context.Context, key string, window time.Duration) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	e := m.entries[key]
	if !now.Before(e.expires) {
		e = memoryCount{expires: now.Add(window)}
		m.sweepLocked(now)
	}
	e.n++
	m.entries[key] = e
	return e.n, nil
}

func (m *MemoryCounter) Count(_ context.Context, key string) (int64, time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[key]
	now := m.now()
	if !ok || !now.Before(e.expires) {
		return 0, 0, nil
	}
	return e.n, e.expires.Sub(now), nil
}

func (m *MemoryCounter) Reset(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.entries, key)
	return nil
}

// sweepLocked drops expired windows so hostile logins cannot grow the map
// without bound; it runs only when a new window opens.
func (m *MemoryCounter) sweepLocked(now time.Time) {
	if len(m.entries) < 1024 {
		return
	}
	for k, e := range m.entries {
		if !now.Before(e.expires) {
			delete(m.entries, k)
		}
	}
}

// RedisCounter shares failure counts across nodes.
type RedisCounter struct{ rdb redis.UniversalClient }

// NewRedisCounter returns a Counter on rdb.
func NewRedisCounter(rdb redis.UniversalClient) *RedisCounter { return &RedisCounter{rdb: rdb} }

// incrScript starts the window on the first failure only, atomically.
var incrScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`)

func (r *RedisCounter) Incr(ctx context.Context, key string, window time.Duration) (int64, error) {
	n, err := incrScript.Run(ctx, r.rdb, []string{key}, window.Milliseconds()).Int64()
	if err != nil {
		return 0, fmt.Errorf("redis incr %s: %w", key, err)
	}
	return n, nil
}

func (r *RedisCounter) Count(ctx context.Context, key string) (int64, time.Duration, error) {
	pipe := r.rdb.Pipeline()
	get := pipe.Get(ctx, key)
	ttl := pipe.PTTL(ctx, key)
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return 0, 0, fmt.Errorf("redis count %s: %w", key, err)
	}
	n, err := get.Int64()
	if err == redis.Nil {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("redis count %s: %w", key, err)
	}
	return n, max(ttl.Val(), 0), nil
}

func (r *RedisCounter) Reset(ctx context.Context, key string) error {
	if err := r.rdb.Del(ctx, key).Err(); err != nil {
		return fmt.Errorf("redis reset %s: %w", key, err)
	}
	return nil
}

// Throttle limits login failures per login name and per client address.
type Throttle struct {
	counter   Counter
	perLogin  int64
	perClient int64
	window    time.Duration
}

// NewThrottle returns the contract's throttle: 5 failures per login or 20
// per client address within 15 minutes.
func NewThrottle(c Counter) *Throttle {
	return &Throttle{counter: c, perLogin: 5, perClient: 20, window: 15 * time.Minute}
}

func loginKey(login string) string   { return "login:fail:user:" + login }
func clientKey(client string) string { return "login:fail:ip:" + client }

// Blocked reports how long the caller must wait, or 0 if it may try.
func (t *Throttle) Blocked(ctx context.Context, login, client string) (time.Duration, error) {
	var wait time.Duration
	for _, k := range []struct {
		key   string
		limit int64
	}{{loginKey(login), t.perLogin}, {clientKey(client), t.perClient}} {
		n, ttl, err := t.counter.Count(ctx, k.key)
		if err != nil {
			return 0, err
		}
		if n >= k.limit {
			wait = max(wait, ttl, time.Second)
		}
	}
	return wait, nil
}

// Failed records one failed attempt.
func (t *Throttle) Failed(ctx context.Context, login, client string) error {
	if _, err := t.counter.Incr(ctx, loginKey(login), t.window); err != nil {
		return err
	}
	_, err := t.counter.Incr(ctx, clientKey(client), t.window)
	return err
}

// Succeeded clears the login's count (not the client's: one good password
// must not reset a guessing run across many accounts).
func (t *Throttle) Succeeded(ctx context.Context, login string) error {
	return t.counter.Reset(ctx, loginKey(login))
}

// FallbackCounter uses a shared counter and, while it is unreachable, a
// local one: throttling must neither fail open nor lock everyone out when
// Redis is down.
type FallbackCounter struct {
	primary Counter
	local   *MemoryCounter
	log     *slog.Logger
}

// NewFallbackCounter wraps primary with an in-process fallback.
func NewFallbackCounter(primary Counter, log *slog.Logger) *FallbackCounter {
	return &FallbackCounter{primary: primary, local: NewMemoryCounter(), log: log}
}

func (f *FallbackCounter) Incr(ctx context.Context, key string, window time.Duration) (int64, error) {
	n, err := f.primary.Incr(ctx, key, window)
	if err != nil {
		f.log.Warn("login throttle: shared counter unreachable, counting locally", "err", err)
		return f.local.Incr(ctx, key, window)
	}
	return n, nil
}

func (f *FallbackCounter) Count(ctx context.Context, key string) (int64, time.Duration, error) {
	n, ttl, err := f.primary.Count(ctx, key)
	ln, lttl, _ := f.local.Count(ctx, key)
	if err != nil {
		f.log.Warn("login throttle: shared counter unreachable, counting locally", "err", err)
		return ln, lttl, nil
	}
	if ln > n {
		return ln, lttl, nil
	}
	return n, ttl, nil
}

func (f *FallbackCounter) Reset(ctx context.Context, key string) error {
	_ = f.local.Reset(ctx, key)
	if err := f.primary.Reset(ctx, key); err != nil {
		f.log.Warn("login throttle: shared counter unreachable", "err", err)
	}
	return nil
}
