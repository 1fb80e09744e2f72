// Package ratelimit is Parley's one limiter: every flood limit and the
// login throttle take their budget from it. A budget is a GCRA (generic
// cell rate algorithm, the token bucket without a timer): Burst units at
// once, refilled at Rate per Period. Taking a unit is one atomic step, so
// however many requests arrive together, at most the budget passes.
//
// Redis holds the budgets when it is configured (github.com/go-redis/redis_rate,
// one Lua script per decision, shared by every node); Memory is the same
// algorithm in process, for a single node and as Fallback's stand-in while
// Redis is unreachable (each node then counts alone: a cluster briefly
// allows the budget once per node rather than failing open or shut).
//
// Concurrent counts (sockets open at once) are not rates: Slots counts
// them in process, per node.
package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// Limit is a budget: Burst units at once, refilled at Rate per Period.
// The zero Limit (Rate 0) is no limit at all.
type Limit struct {
	Rate   int
	Period time.Duration
	Burst  int
}

// Off reports whether l limits nothing.
func (l Limit) Off() bool { return l.Rate <= 0 || l.Period <= 0 }

func (l Limit) burst() int { return max(l.Burst, 1) }

// emission is the time one unit takes to come back.
func (l Limit) emission() time.Duration { return l.Period / time.Duration(l.Rate) }

// Result is one decision.
type Result struct {
	Allowed bool
	// RetryAfter is how long until one unit is back, when not Allowed.
	RetryAfter time.Duration
}

// Limiter takes units from budgets named by keys.
type Limiter interface {
	// Allow takes one unit of key's budget under l, or refuses without
	// taking any. An Off limit always allows.
	Allow(ctx context.Context, key string, l Limit) (Result, error)
	// Refund gives back one unit Allow took (never more than the budget).
	Refund(ctx context.Context, key string, l Limit) error
	// Reset gives back the whole budget.
	Reset(ctx context.Context, key string) error
}

var (
	_ Limiter = (*Redis)(nil)
	_ Limiter = (*Memory)(nil)
	_ Limiter = (*Fallback)(nil)
)

// Redis keeps budgets in Redis under "rate:<key>", shared by every node.
type Redis struct {
	rdb redis.UniversalClient
	lim *redis_rate.Limiter
}

// redisRatePrefix is the prefix redis_rate puts before every key.
const redisRatePrefix = "rate:"

// NewRedis returns a Limiter on rdb.
func NewRedis(rdb redis.UniversalClient) *Redis {
	return &Redis{rdb: rdb, lim: redis_rate.NewLimiter(rdb)}
}

func (r *Redis) Allow(ctx context.Context, key string, l Limit) (Result, error) {
	if l.Off() {
		return Result{Allowed: true}, nil
	}
	res, err := r.lim.Allow(ctx, key, redis_rate.Limit{Rate: l.Rate, Period: l.Period, Burst: l.burst()})
	if err != nil {
		return Result{}, fmt.Errorf("ratelimit %s: %w", key, err)
	}
	if res.Allowed > 0 {
		return Result{Allowed: true}, nil
	}
	return Result{RetryAfter: max(res.RetryAfter, time.Millisecond)}, nil
}

// refundScript gives back one unit of a redis_rate budget: it moves the
// key's theoretical arrival time (seconds since 2017, as redis_rate keeps
// it) back by one emission interval, and deletes the key when that leaves
// the budget full. redis_rate's own script run with a cost of -1 cannot do
// this: it writes only a time still in the future, so refunding the last
// unit taken left the key as it was.
var refundScript = redis.NewScript(`
local tat = redis.call("GET", KEYS[1])
if not tat then return 0 end
local now = redis.call("TIME")
now = (now[1] - 1483228800) + (now[2] / 1000000)
local new_tat = tonumber(tat) - tonumber(ARGV[1])
if new_tat <= now then
  redis.call("DEL", KEYS[1])
else
  redis.call("SET", KEYS[1], new_tat, "EX", math.ceil(new_tat - now))
end
return 1`)

// Refund gives back one unit, never past a full budget.
func (r *Redis) Refund(ctx context.Context, key string, l Limit) error {
	if l.Off() {
		return nil
	}
	emission := l.Period.Seconds() / float64(l.Rate)
	if err := refundScript.Run(ctx, r.rdb, []string{redisRatePrefix + key}, emission).Err(); err != nil {
		return fmt.Errorf("ratelimit refund %s: %w", key, err)
	}
	return nil
}

func (r *Redis) Reset(ctx context.Context, key string) error {
	if err := r.lim.Reset(ctx, key); err != nil {
		return fmt.Errorf("ratelimit reset %s: %w", key, err)
	}
	return nil
}

// Memory is the in-process Limiter: the same GCRA as the Redis script.
type Memory struct {
	mu  sync.Mutex
	now func() time.Time
	// tat is each key's theoretical arrival time: the budget is full when
	// it is not after now.
	tat map[string]time.Time
}

// NewMemory returns an in-process Limiter; now nil means time.Now.
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{now: now, tat: map[string]time.Time{}}
}

func (m *Memory) Allow(_ context.Context, key string, l Limit) (Result, error) {
	if l.Off() {
		return Result{Allowed: true}, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	tat := m.tat[key]
	if tat.Before(now) {
		tat = now
	}
	newTAT := tat.Add(l.emission())
	allowAt := newTAT.Add(-l.emission() * time.Duration(l.burst()))
	if now.Before(allowAt) {
		return Result{RetryAfter: max(allowAt.Sub(now), time.Millisecond)}, nil
	}
	m.sweepLocked(now)
	m.tat[key] = newTAT
	return Result{Allowed: true}, nil
}

func (m *Memory) Refund(_ context.Context, key string, l Limit) error {
	if l.Off() {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	tat, ok := m.tat[key]
	if !ok {
		return nil
	}
	tat = tat.Add(-l.emission())
	if !tat.After(m.now()) {
		delete(m.tat, key)
		return nil
	}
	m.tat[key] = tat
	return nil
}

func (m *Memory) Reset(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.tat, key)
	return nil
}

// sweepLocked drops full budgets (a past arrival time is the same as none),
// so hostile keys cannot grow the map without bound.
func (m *Memory) sweepLocked(now time.Time) {
	if len(m.tat) < 4096 || len(m.tat)%1024 != 0 {
		return
	}
	for k, t := range m.tat {
		if !t.After(now) {
			delete(m.tat, k)
		}
	}
}

// Fallback asks the shared Limiter and, while it is unreachable, a local
// one: a limit must neither fail open nor shut everyone out when Redis is
// down. After a failure the shared one is left alone for a second, so a
// Redis that hangs (a partition, not a refused dial) slows no request
// beyond the first.
type Fallback struct {
	shared Limiter
	local  *Memory
	log    *slog.Logger
	warned atomic.Int64 // unix seconds of the last warning
	// downUntil is when to try the shared Limiter again (unix nanoseconds).
	downUntil atomic.Int64
}

// retryShared is how long Fallback counts locally after a shared failure.
const retryShared = time.Second

func (f *Fallback) sharedUp() bool { return time.Now().UnixNano() >= f.downUntil.Load() }

// NewFallback wraps shared with an in-process stand-in.
func NewFallback(shared Limiter, log *slog.Logger) *Fallback {
	return &Fallback{shared: shared, local: NewMemory(nil), log: log}
}

func (f *Fallback) Allow(ctx context.Context, key string, l Limit) (Result, error) {
	if !f.sharedUp() {
		return f.local.Allow(ctx, key, l)
	}
	res, err := f.shared.Allow(ctx, key, l)
	if err != nil {
		f.warn(err)
		return f.local.Allow(ctx, key, l)
	}
	return res, nil
}

// Refund returns the unit to both: the caller does not know which one gave
// it, and a refund to a budget that took nothing changes nothing.
func (f *Fallback) Refund(ctx context.Context, key string, l Limit) error {
	_ = f.local.Refund(ctx, key, l)
	if !f.sharedUp() {
		return nil
	}
	if err := f.shared.Refund(ctx, key, l); err != nil {
		f.warn(err)
	}
	return nil
}

func (f *Fallback) Reset(ctx context.Context, key string) error {
	_ = f.local.Reset(ctx, key)
	if !f.sharedUp() {
		return nil
	}
	if err := f.shared.Reset(ctx, key); err != nil {
		f.warn(err)
	}
	return nil
}

// warn marks the shared Limiter down for retryShared and logs at most once
// a second: during an outage every request fails over.
func (f *Fallback) warn(err error) {
	f.downUntil.Store(time.Now().Add(retryShared).UnixNano())
	now := time.Now().Unix()
	if last := f.warned.Load(); last != now && f.warned.CompareAndSwap(last, now) {
		f.log.Warn("rate limits: Redis unreachable, counting on this node", "err", err)
	}
}

// Slots counts things open at once (sockets) per key, on this node.
type Slots struct {
	mu sync.Mutex
	n  map[string]int
}

// NewSlots returns empty counts.
func NewSlots() *Slots { return &Slots{n: map[string]int{}} }

// Acquire takes one of key's max slots; max <= 0 means unlimited.
func (s *Slots) Acquire(key string, limit int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if limit > 0 && s.n[key] >= limit {
		return false
	}
	s.n[key]++
	return true
}

// Release gives back a slot Acquire took.
func (s *Slots) Release(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[key] <= 1 {
		delete(s.n, key)
		return
	}
	s.n[key]--
}
