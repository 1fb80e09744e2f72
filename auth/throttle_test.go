package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/ratelimit"
	"github.com/parley-chat/parley/internal/testenv"
)

// uniq returns a prefix no other test (or earlier run on a shared REDIS_URL)
// uses.
func uniq(t *testing.T) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "authtest:" + t.Name() + ":" + hex.EncodeToString(b) + ":"
}

func throttleLimiters(t *testing.T) map[string]ratelimit.Limiter {
	rdb := testenv.RedisClient(t, testenv.RedisURL(t))
	return map[string]ratelimit.Limiter{
		"memory":   ratelimit.NewMemory(nil),
		"redis":    ratelimit.NewRedis(rdb),
		"fallback": ratelimit.NewFallback(ratelimit.NewRedis(rdb), slog.New(slog.DiscardHandler)),
	}
}

func TestThrottle(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		run  func(t *testing.T, th *Throttle, p string)
	}{
		{"5 guesses of one account, then refused with a wait", func(t *testing.T, th *Throttle, p string) {
			for i := range 5 {
				if wait, err := th.Reserve(ctx, p+"acct", p+"ip"); err != nil || wait != 0 {
					t.Fatalf("guess %d: wait %v err %v", i+1, wait, err)
				}
			}
			wait, err := th.Reserve(ctx, p+"acct", p+"ip")
			if err != nil || wait < time.Second {
				t.Fatalf("6th guess: wait %v err %v, want refused", wait, err)
			}
		}},
		{"a success clears the account, and refunds the address", func(t *testing.T, th *Throttle, p string) {
			for range 4 {
				_, _ = th.Reserve(ctx, p+"acct", p+"ip")
			}
			_, _ = th.Reserve(ctx, p+"acct", p+"ip") // the good one
			if err := th.Succeeded(ctx, p+"acct", p+"ip"); err != nil {
				t.Fatal(err)
			}
			for i := range 5 {
				if wait, _ := th.Reserve(ctx, p+"acct", p+"ip"); wait != 0 {
					t.Fatalf("guess %d after a success refused", i+1)
				}
			}
		}},
		{"20 guesses from one address across accounts, then refused", func(t *testing.T, th *Throttle, p string) {
			for i := range 20 {
				if wait, _ := th.Reserve(ctx, fmt.Sprintf("%sacct%d", p, i), p+"ip"); wait != 0 {
					t.Fatalf("guess %d refused", i+1)
				}
			}
			if wait, _ := th.Reserve(ctx, p+"fresh", p+"ip"); wait == 0 {
				t.Fatal("21st guess from one address allowed")
			}
			// The refused address did not charge the fresh account.
			if wait, _ := th.Reserve(ctx, p+"fresh", p+"other-ip"); wait != 0 {
				t.Fatal("a guess refused by its address was charged to the account")
			}
		}},
		{"200 at once: exactly the budget passes", func(t *testing.T, th *Throttle, p string) {
			var passed atomic.Int64
			var wg sync.WaitGroup
			for i := range 200 {
				wg.Go(func() {
					if wait, err := th.Reserve(ctx, p+"acct", fmt.Sprintf("%sip%d", p, i)); err == nil && wait == 0 {
						passed.Add(1)
					}
				})
			}
			wg.Wait()
			if passed.Load() != 5 {
				t.Fatalf("%d of 200 parallel guesses passed, want 5", passed.Load())
			}
		}},
	}
	for name, lim := range throttleLimiters(t) {
		for _, c := range cases {
			t.Run(name+"/"+c.name, func(t *testing.T) {
				c.run(t, NewThrottle(lim, DefaultThrottleLimits), uniq(t))
			})
		}
	}
}

func TestThrottleWithRedisDown(t *testing.T) {
	r := testenv.StartRedis(t)
	lim := ratelimit.NewFallback(ratelimit.NewRedis(testenv.RedisClient(t, r.URL)), slog.New(slog.DiscardHandler))
	r.Stop()
	th := NewThrottle(lim, DefaultThrottleLimits)
	var passed atomic.Int64
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			if wait, err := th.Reserve(context.Background(), "acct", "ip"); err == nil && wait == 0 {
				passed.Add(1)
			}
		})
	}
	wg.Wait()
	if passed.Load() != 5 {
		t.Fatalf("%d passed with Redis down, want 5 (counted on this node)", passed.Load())
	}
}

func TestAccountKeySharesUsernameAndEmail(t *testing.T) {
	if accountKey("u1", "alice") != accountKey("u1", "alice@example.com") {
		t.Fatal("one account's username and email must share a budget")
	}
	if accountKey("", "ghost") == accountKey("", "ghost2") {
		t.Fatal("unknown names have budgets of their own")
	}
}
