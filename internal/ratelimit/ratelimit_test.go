package ratelimit

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/testenv"
)

// limiters are the implementations under one contract, each fresh.
func limiters(t *testing.T) map[string]Limiter {
	rdb := testenv.RedisClient(t, testenv.RedisURL(t))
	return map[string]Limiter{
		"memory":   NewMemory(nil),
		"redis":    NewRedis(rdb),
		"fallback": NewFallback(NewRedis(rdb), slog.New(slog.DiscardHandler)),
	}
}

func TestParallelTakersNeverExceedTheBurst(t *testing.T) {
	for name, lim := range limiters(t) {
		t.Run(name, func(t *testing.T) {
			key := "test:parallel:" + t.Name() + time.Now().String()
			l := Limit{Rate: 5, Period: 15 * time.Minute, Burst: 5}
			var allowed atomic.Int64
			var wg sync.WaitGroup
			for range 200 {
				wg.Go(func() {
					res, err := lim.Allow(context.Background(), key, l)
					if err != nil {
						t.Error(err)
						return
					}
					if res.Allowed {
						allowed.Add(1)
					} else if res.RetryAfter <= 0 {
						t.Error("refused without a RetryAfter")
					}
				})
			}
			wg.Wait()
			if got := allowed.Load(); got != 5 {
				t.Fatalf("allowed %d of 200, want exactly the burst of 5", got)
			}
		})
	}
}

func TestRefundAndReset(t *testing.T) {
	ctx := context.Background()
	l := Limit{Rate: 1, Period: time.Hour, Burst: 2}
	for name, lim := range limiters(t) {
		t.Run(name, func(t *testing.T) {
			key := "test:refund:" + t.Name() + time.Now().String()
			take := func() bool {
				res, err := lim.Allow(ctx, key, l)
				if err != nil {
					t.Fatal(err)
				}
				return res.Allowed
			}
			if !take() || !take() || take() {
				t.Fatal("want two allowed, then refused")
			}
			if err := lim.Refund(ctx, key, l); err != nil {
				t.Fatal(err)
			}
			if !take() || take() {
				t.Fatal("a refund gives back exactly one unit")
			}
			if err := lim.Reset(ctx, key); err != nil {
				t.Fatal(err)
			}
			if !take() || !take() || take() {
				t.Fatal("a reset gives back the whole budget")
			}
			// Refunding the only unit taken makes the budget full again.
			_ = lim.Reset(ctx, key)
			if !take() {
				t.Fatal("first take refused")
			}
			if err := lim.Refund(ctx, key, l); err != nil {
				t.Fatal(err)
			}
			if !take() || !take() || take() {
				t.Fatal("after refunding the one unit taken, want the whole burst (two) again")
			}
			// Refunds beyond what was taken do not grow the budget.
			_ = lim.Reset(ctx, key)
			for range 5 {
				_ = lim.Refund(ctx, key, l)
			}
			if !take() || !take() || take() {
				t.Fatal("refunds on a full budget must not raise it")
			}
		})
	}
}

func TestMemoryRefillsAtTheRate(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	m := NewMemory(func() time.Time { return now })
	l := Limit{Rate: 20, Period: time.Second, Burst: 40}
	ctx := context.Background()
	for i := range 40 {
		if res, _ := m.Allow(ctx, "k", l); !res.Allowed {
			t.Fatalf("unit %d of the burst refused", i)
		}
	}
	res, _ := m.Allow(ctx, "k", l)
	if res.Allowed || res.RetryAfter != 50*time.Millisecond {
		t.Fatalf("past the burst: %+v, want refused for 50ms", res)
	}
	now = now.Add(50 * time.Millisecond)
	if res, _ := m.Allow(ctx, "k", l); !res.Allowed {
		t.Fatal("one unit is back after one emission interval")
	}
}

func TestOffLimitAllowsEverything(t *testing.T) {
	for name, lim := range limiters(t) {
		t.Run(name, func(t *testing.T) {
			for range 100 {
				if res, err := lim.Allow(context.Background(), "test:off", Limit{}); err != nil || !res.Allowed {
					t.Fatalf("%+v %v", res, err)
				}
			}
		})
	}
}

func TestFallbackCountsLocallyWhileRedisIsDown(t *testing.T) {
	r := testenv.StartRedis(t)
	rdb := testenv.RedisClient(t, r.URL)
	f := NewFallback(NewRedis(rdb), slog.New(slog.DiscardHandler))
	r.Stop()
	l := Limit{Rate: 3, Period: time.Hour, Burst: 3}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if res, err := f.Allow(context.Background(), "k", l); err == nil && res.Allowed {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if allowed.Load() != 3 {
		t.Fatalf("allowed %d with Redis down, want the budget of 3", allowed.Load())
	}
}

func TestSlots(t *testing.T) {
	s := NewSlots()
	if !s.Acquire("a", 2) || !s.Acquire("a", 2) || s.Acquire("a", 2) {
		t.Fatal("want two slots, then none")
	}
	s.Release("a")
	if !s.Acquire("a", 2) {
		t.Fatal("a released slot is free again")
	}
	if !s.Acquire("b", 0) {
		t.Fatal("limit 0 is unlimited")
	}
}

// countingLimiter fails every call and counts them.
type countingLimiter struct{ calls atomic.Int64 }

func (c *countingLimiter) Allow(context.Context, string, Limit) (Result, error) {
	c.calls.Add(1)
	return Result{}, errors.New("redis: i/o timeout")
}
func (c *countingLimiter) Refund(context.Context, string, Limit) error {
	c.calls.Add(1)
	return errors.New("redis: i/o timeout")
}
func (c *countingLimiter) Reset(context.Context, string) error {
	c.calls.Add(1)
	return errors.New("redis: i/o timeout")
}

// A shared limiter that fails (a hanging Redis would cost a timeout each
// time) is asked once, then left alone while the node counts locally.
func TestFallbackLeavesAFailingSharedLimiterAlone(t *testing.T) {
	shared := &countingLimiter{}
	f := NewFallback(shared, slog.New(slog.DiscardHandler))
	l := Limit{Rate: 100, Period: time.Second, Burst: 100}
	for range 50 {
		if res, err := f.Allow(context.Background(), "k", l); err != nil || !res.Allowed {
			t.Fatalf("%+v %v", res, err)
		}
		_ = f.Refund(context.Background(), "k", l)
	}
	if n := shared.calls.Load(); n != 1 {
		t.Fatalf("the failing shared limiter was asked %d times, want once", n)
	}
}
