package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/testenv"
)

// uniq returns a prefix no other test (or earlier run on a shared REDIS_URL)
// uses.
func uniq(t *testing.T) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "authtest:" + t.Name() + ":" + hex.EncodeToString(b) + ":"
}

// counterEnv is one Counter implementation under test.
type counterEnv struct {
	counter Counter
	// pass lets d go by on the counter's clock: the memory counter's clock
	// is moved; Redis keeps real time, so pass does nothing and the caller
	// polls.
	pass func(d time.Duration)
}

func memoryCounterEnv() counterEnv {
	clock := testenv.NewClock(time.Now())
	m := NewMemoryCounter()
	m.now = clock.Now
	return counterEnv{counter: m, pass: clock.Advance}
}

func redisCounterEnv(t *testing.T) counterEnv {
	return counterEnv{counter: NewRedisCounter(testenv.RedisClient(t, testenv.RedisURL(t))), pass: func(time.Duration) {}}
}

func TestMemoryCounter(t *testing.T) { testCounter(t, memoryCounterEnv) }

func TestRedisCounter(t *testing.T) {
	testCounter(t, func() counterEnv { return redisCounterEnv(t) })
}

// waitCount polls Count until key's window has ended (count 0), failing at a
// deadline.
func waitCount(t *testing.T, c Counter, key string) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(3 * time.Second)
	for {
		n, ttl, err := c.Count(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			if ttl != 0 {
				t.Fatalf("Count = 0 with %v left", ttl)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("window of %s did not end: count %d, %v left", key, n, ttl)
		}
		time.Sleep(5 * time.Millisecond) // poll interval, not synchronisation
	}
}

// testCounter runs the same cases against every Counter.
func testCounter(t *testing.T, newEnv func() counterEnv) {
	ctx := context.Background()
	incr := func(t *testing.T, c Counter, key string, window time.Duration, want int64) {
		t.Helper()
		n, err := c.Incr(ctx, key, window)
		if err != nil || n != want {
			t.Fatalf("Incr(%s) = %d, %v; want %d", key, n, err, want)
		}
	}
	count := func(t *testing.T, c Counter, key string) (int64, time.Duration) {
		t.Helper()
		n, ttl, err := c.Count(ctx, key)
		if err != nil {
			t.Fatalf("Count(%s): %v", key, err)
		}
		return n, ttl
	}

	cases := []struct {
		name string
		run  func(t *testing.T, env counterEnv, key string)
	}{
		{"unknown key counts 0", func(t *testing.T, env counterEnv, key string) {
			if n, ttl := count(t, env.counter, key); n != 0 || ttl != 0 {
				t.Fatalf("Count = %d, %v; want 0, 0", n, ttl)
			}
		}},
		{"Incr counts within the window", func(t *testing.T, env counterEnv, key string) {
			for i := int64(1); i <= 7; i++ {
				incr(t, env.counter, key, time.Minute, i)
			}
		}},
		{"Count reports the count and the time left", func(t *testing.T, env counterEnv, key string) {
			const window = time.Minute
			incr(t, env.counter, key, window, 1)
			incr(t, env.counter, key, window, 2)
			incr(t, env.counter, key, window, 3)
			n, ttl := count(t, env.counter, key)
			if n != 3 || ttl <= 0 || ttl > window {
				t.Fatalf("Count = %d, %v; want 3, in (0, %v]", n, ttl, window)
			}
		}},
		{"the window starts at the first failure", func(t *testing.T, env counterEnv, key string) {
			// A later Incr, even with a longer window, does not extend it.
			incr(t, env.counter, key, time.Minute, 1)
			incr(t, env.counter, key, time.Hour, 2)
			if n, ttl := count(t, env.counter, key); n != 2 || ttl <= 0 || ttl > time.Minute {
				t.Fatalf("Count = %d, %v; want 2, in (0, 1m]", n, ttl)
			}
		}},
		{"Reset clears", func(t *testing.T, env counterEnv, key string) {
			incr(t, env.counter, key, time.Minute, 1)
			incr(t, env.counter, key, time.Minute, 2)
			if err := env.counter.Reset(ctx, key); err != nil {
				t.Fatal(err)
			}
			if n, ttl := count(t, env.counter, key); n != 0 || ttl != 0 {
				t.Fatalf("after Reset: Count = %d, %v", n, ttl)
			}
			incr(t, env.counter, key, time.Minute, 1) // a fresh window
			if err := env.counter.Reset(ctx, key+"never-counted"); err != nil {
				t.Fatalf("Reset of an unknown key: %v", err)
			}
		}},
		{"a window ends", func(t *testing.T, env counterEnv, key string) {
			const window = 50 * time.Millisecond
			incr(t, env.counter, key, window, 1)
			incr(t, env.counter, key, window, 2)
			env.pass(window)
			waitCount(t, env.counter, key)
			// The next failure opens a new window.
			incr(t, env.counter, key, time.Minute, 1)
			if n, ttl := count(t, env.counter, key); n != 1 || ttl <= window {
				t.Fatalf("new window: Count = %d, %v; want 1, about 1m", n, ttl)
			}
		}},
		{"keys are independent", func(t *testing.T, env counterEnv, key string) {
			a, b := key+"a", key+"b"
			incr(t, env.counter, a, time.Minute, 1)
			incr(t, env.counter, a, time.Minute, 2)
			incr(t, env.counter, b, time.Minute, 1)
			if n, _ := count(t, env.counter, a); n != 2 {
				t.Fatalf("Count(a) = %d", n)
			}
			if err := env.counter.Reset(ctx, a); err != nil {
				t.Fatal(err)
			}
			if n, _ := count(t, env.counter, b); n != 1 {
				t.Fatalf("Reset(a) changed b: Count(b) = %d", n)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, newEnv(), uniq(t))
		})
	}
}

func TestMemoryCounterSweepsExpiredWindows(t *testing.T) {
	env := memoryCounterEnv()
	m := env.counter.(*MemoryCounter)
	ctx := context.Background()
	for i := range 2000 {
		if _, err := m.Incr(ctx, fmt.Sprint("old", i), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	env.pass(time.Minute)
	if _, err := m.Incr(ctx, "new", time.Minute); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	n := len(m.entries)
	m.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d entries after the old windows ended, want 1", n)
	}
}

func TestThrottle(t *testing.T) {
	envs := map[string]func(t *testing.T) counterEnv{
		"memory": func(*testing.T) counterEnv { return memoryCounterEnv() },
		"redis":  redisCounterEnv,
	}
	for name, newEnv := range envs {
		t.Run(name, func(t *testing.T) { testThrottle(t, newEnv) })
	}
}

func testThrottle(t *testing.T, newEnv func(t *testing.T) counterEnv) {
	ctx := context.Background()
	blocked := func(t *testing.T, th *Throttle, login, client string) time.Duration {
		t.Helper()
		d, err := th.Blocked(ctx, login, client)
		if err != nil {
			t.Fatal(err)
		}
		if d < 0 || d > th.window {
			t.Fatalf("Blocked = %v, outside [0, %v]", d, th.window)
		}
		return d
	}
	fail := func(t *testing.T, th *Throttle, login, client string) {
		t.Helper()
		if err := th.Failed(ctx, login, client); err != nil {
			t.Fatal(err)
		}
	}

	cases := []struct {
		name string
		run  func(t *testing.T, th *Throttle, p string)
	}{
		{"5 failures of one login block it", func(t *testing.T, th *Throttle, p string) {
			login := p + "alice"
			for i := range 4 {
				fail(t, th, login, fmt.Sprint(p, "client", i)) // spread over clients
				if d := blocked(t, th, login, p+"other"); d != 0 {
					t.Fatalf("blocked after %d failures: %v", i+1, d)
				}
			}
			fail(t, th, login, p+"client4")
			if d := blocked(t, th, login, p+"fresh-client"); d < time.Second {
				t.Fatalf("after 5 failures Blocked = %v, want >= 1s", d)
			}
			if d := blocked(t, th, p+"bob", p+"client0"); d != 0 {
				t.Fatalf("another login is blocked too: %v", d)
			}
		}},
		{"Succeeded clears the login, not the client", func(t *testing.T, th *Throttle, p string) {
			login, client := p+"alice", p+"10.0.0.1"
			for range 4 {
				fail(t, th, login, client)
			}
			if err := th.Succeeded(ctx, login); err != nil {
				t.Fatal(err)
			}
			if n, _, err := th.counter.Count(ctx, loginKey(login)); err != nil || n != 0 {
				t.Fatalf("login count after Succeeded = %d, %v", n, err)
			}
			if n, _, err := th.counter.Count(ctx, clientKey(client)); err != nil || n != 4 {
				t.Fatalf("client count after Succeeded = %d, %v; want 4", n, err)
			}
			// Four more failures do not block the login: its count restarted.
			for range 4 {
				fail(t, th, login, client)
			}
			if d := blocked(t, th, login, client); d != 0 {
				t.Fatalf("blocked after Succeeded and 4 failures: %v", d)
			}
		}},
		{"20 failures from one client across logins block it", func(t *testing.T, th *Throttle, p string) {
			client := p + "10.0.0.2"
			for i := range 19 {
				fail(t, th, fmt.Sprint(p, "user", i%5, "-", i/5), client) // no login reaches 5
			}
			if d := blocked(t, th, p+"someone", client); d != 0 {
				t.Fatalf("blocked after 19 failures: %v", d)
			}
			fail(t, th, p+"last", client)
			if d := blocked(t, th, p+"someone", client); d < time.Second {
				t.Fatalf("after 20 failures from one client Blocked = %v, want >= 1s", d)
			}
			if d := blocked(t, th, p+"someone", p+"10.0.0.3"); d != 0 {
				t.Fatalf("another client is blocked too: %v", d)
			}
			// A success on one login does not lift the client's block.
			if err := th.Succeeded(ctx, p+"last"); err != nil {
				t.Fatal(err)
			}
			if d := blocked(t, th, p+"last", client); d == 0 {
				t.Fatal("Succeeded lifted the client block")
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, NewThrottle(newEnv(t).counter), uniq(t))
		})
	}
}

func TestFallbackCounterRedisDown(t *testing.T) {
	ctx := context.Background()
	rds := testenv.StartRedis(t)
	rdb := testenv.RedisClient(t, rds.URL)
	fc := NewFallbackCounter(NewRedisCounter(rdb), slog.New(slog.DiscardHandler))

	// While Redis is up the count is shared: it lands in Redis.
	if n, err := fc.Incr(ctx, "k-up", time.Minute); err != nil || n != 1 {
		t.Fatalf("Incr with Redis up = %d, %v", n, err)
	}
	if v, err := rdb.Get(ctx, "k-up").Int64(); err != nil || v != 1 {
		t.Fatalf("Redis holds %d, %v; want 1", v, err)
	}

	rds.Stop()
	if err := rdb.Ping(ctx).Err(); err == nil {
		t.Fatal("Redis still answers after Stop")
	}
	for i := int64(1); i <= 3; i++ {
		if n, err := fc.Incr(ctx, "k", time.Minute); err != nil || n != i {
			t.Fatalf("Incr with Redis down = %d, %v; want %d, nil", n, err, i)
		}
	}
	if n, ttl, err := fc.Count(ctx, "k"); err != nil || n != 3 || ttl <= 0 || ttl > time.Minute {
		t.Fatalf("Count with Redis down = %d, %v, %v; want 3, (0, 1m], nil", n, ttl, err)
	}
	if n, ttl, err := fc.Count(ctx, "never"); err != nil || n != 0 || ttl != 0 {
		t.Fatalf("Count of an unknown key = %d, %v, %v", n, ttl, err)
	}
	if err := fc.Reset(ctx, "k"); err != nil {
		t.Fatalf("Reset with Redis down: %v", err)
	}
	if n, _, err := fc.Count(ctx, "k"); err != nil || n != 0 {
		t.Fatalf("Count after Reset = %d, %v", n, err)
	}

	// The throttle keeps working on the local count: it neither fails open
	// nor errors.
	th := NewThrottle(fc)
	for range 5 {
		if err := th.Failed(ctx, "alice", "10.0.0.1"); err != nil {
			t.Fatalf("Failed with Redis down: %v", err)
		}
	}
	if d, err := th.Blocked(ctx, "alice", "10.0.0.9"); err != nil || d <= 0 {
		t.Fatalf("Blocked with Redis down = %v, %v; want > 0, nil", d, err)
	}
	if err := th.Succeeded(ctx, "alice"); err != nil {
		t.Fatalf("Succeeded with Redis down: %v", err)
	}
	if d, err := th.Blocked(ctx, "alice", "10.0.0.9"); err != nil || d != 0 {
		t.Fatalf("Blocked after Succeeded = %v, %v", d, err)
	}
}

func TestFallbackCounterPrefersTheHigherCount(t *testing.T) {
	// With Redis up, Count answers the larger of the shared and the local
	// count, so failures counted locally during an outage still count.
	ctx := context.Background()
	key := uniq(t)
	rc := NewRedisCounter(testenv.RedisClient(t, testenv.RedisURL(t)))
	fc := NewFallbackCounter(rc, slog.New(slog.DiscardHandler))
	for range 3 {
		if _, err := fc.local.Incr(ctx, key, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := fc.Incr(ctx, key, time.Minute); err != nil {
		t.Fatal(err)
	}
	if n, _, err := fc.Count(ctx, key); err != nil || n != 3 {
		t.Fatalf("Count = %d, %v; want the local 3", n, err)
	}
	for range 3 {
		if _, err := fc.Incr(ctx, key, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if n, _, err := fc.Count(ctx, key); err != nil || n != 4 {
		t.Fatalf("Count = %d, %v; want the shared 4", n, err)
	}
	if err := fc.Reset(ctx, key); err != nil {
		t.Fatal(err)
	}
	if n, _, err := fc.Count(ctx, key); err != nil || n != 0 {
		t.Fatalf("Count after Reset = %d, %v; want 0 (both cleared)", n, err)
	}
}
