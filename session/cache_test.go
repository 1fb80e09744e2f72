package session

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/testenv"
	"github.com/parley-chat/parley/store"
)

// cacheEnv is one Cache implementation under test.
type cacheEnv struct {
	cache Cache
	now   func() time.Time // the cache's clock
	// pass lets d go by on the cache's clock: the memory cache's clock is
	// moved; Redis keeps real time, so pass does nothing and callers poll.
	pass func(d time.Duration)
}

func memoryCacheEnv() cacheEnv {
	clock := testenv.NewClock(time.Now())
	m := NewMemoryCache()
	m.now = clock.Now
	return cacheEnv{cache: m, now: clock.Now, pass: clock.Advance}
}

func redisCacheEnv(t *testing.T) cacheEnv {
	return cacheEnv{cache: NewRedisCache(testenv.RedisClient(t, testenv.RedisURL(t))), now: time.Now, pass: func(time.Duration) {}}
}

func TestMemoryCache(t *testing.T) { testCache(t, memoryCacheEnv) }

func TestRedisCache(t *testing.T) {
	testCache(t, func() cacheEnv { return redisCacheEnv(t) })
}

// waitMiss polls Get until sid is gone, failing at a deadline.
func waitMiss(t *testing.T, c Cache, sid string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		_, err := c.Get(context.Background(), sid)
		if errors.Is(err, ErrMiss) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s still cached", sid)
		}
		time.Sleep(5 * time.Millisecond) // poll interval, not synchronisation
	}
}

// testCache runs the same cases against every Cache. Session and user ids
// are fresh ObjectIDs, so the cases can share one Redis.
func testCache(t *testing.T, newEnv func() cacheEnv) {
	ctx := context.Background()
	put := func(t *testing.T, c Cache, e Entry) {
		t.Helper()
		if err := c.Put(ctx, e); err != nil {
			t.Fatalf("Put(%+v): %v", e, err)
		}
	}
	get := func(t *testing.T, c Cache, sid string) Entry {
		t.Helper()
		e, err := c.Get(ctx, sid)
		if err != nil {
			t.Fatalf("Get(%s): %v", sid, err)
		}
		return e
	}
	miss := func(t *testing.T, c Cache, sid string) {
		t.Helper()
		if e, err := c.Get(ctx, sid); !errors.Is(err, ErrMiss) {
			t.Fatalf("Get(%s) = %+v, %v; want ErrMiss", sid, e, err)
		}
	}

	cases := []struct {
		name string
		run  func(t *testing.T, env cacheEnv)
	}{
		{"Put then Get", func(t *testing.T, env cacheEnv) {
			e := Entry{SessionID: store.NewID(), UserID: store.NewID(), ExpiresAt: env.now().Add(time.Hour).Truncate(time.Millisecond)}
			put(t, env.cache, e)
			got := get(t, env.cache, e.SessionID)
			if got.SessionID != e.SessionID || got.UserID != e.UserID || !got.ExpiresAt.Equal(e.ExpiresAt) {
				t.Fatalf("Get = %+v, want %+v", got, e)
			}
		}},
		{"Put replaces", func(t *testing.T, env cacheEnv) {
			e := Entry{SessionID: store.NewID(), UserID: store.NewID(), ExpiresAt: env.now().Add(time.Hour)}
			put(t, env.cache, e)
			e.ExpiresAt = e.ExpiresAt.Add(time.Hour)
			put(t, env.cache, e)
			if got := get(t, env.cache, e.SessionID); !got.ExpiresAt.Equal(e.ExpiresAt) {
				t.Fatalf("Get = %+v, want expiry %v", got, e.ExpiresAt)
			}
		}},
		{"Get of an unknown session misses", func(t *testing.T, env cacheEnv) {
			miss(t, env.cache, store.NewID())
			miss(t, env.cache, "")
		}},
		{"an entry put already expired misses", func(t *testing.T, env cacheEnv) {
			e := Entry{SessionID: store.NewID(), UserID: store.NewID(), ExpiresAt: env.now().Add(-time.Second)}
			put(t, env.cache, e)
			miss(t, env.cache, e.SessionID)
		}},
		{"an entry misses once it expires", func(t *testing.T, env cacheEnv) {
			const ttl = 50 * time.Millisecond
			e := Entry{SessionID: store.NewID(), UserID: store.NewID(), ExpiresAt: env.now().Add(ttl)}
			put(t, env.cache, e)
			get(t, env.cache, e.SessionID)
			env.pass(ttl)
			waitMiss(t, env.cache, e.SessionID)
		}},
		{"Delete removes several sessions", func(t *testing.T, env cacheEnv) {
			uid := store.NewID()
			var sids []string
			for range 4 {
				e := Entry{SessionID: store.NewID(), UserID: uid, ExpiresAt: env.now().Add(time.Hour)}
				put(t, env.cache, e)
				sids = append(sids, e.SessionID)
			}
			other := Entry{SessionID: store.NewID(), UserID: store.NewID(), ExpiresAt: env.now().Add(time.Hour)}
			put(t, env.cache, other)
			if err := env.cache.Delete(ctx, uid, sids[0], sids[2], sids[3]); err != nil {
				t.Fatal(err)
			}
			miss(t, env.cache, sids[0])
			miss(t, env.cache, sids[2])
			miss(t, env.cache, sids[3])
			get(t, env.cache, sids[1])
			get(t, env.cache, other.SessionID)
		}},
		{"Delete of nothing or of unknown sessions is fine", func(t *testing.T, env cacheEnv) {
			if err := env.cache.Delete(ctx, store.NewID()); err != nil {
				t.Fatalf("Delete(): %v", err)
			}
			if err := env.cache.Delete(ctx, store.NewID(), store.NewID(), store.NewID()); err != nil {
				t.Fatalf("Delete(unknown): %v", err)
			}
		}},
		{"Ping", func(t *testing.T, env cacheEnv) {
			if err := env.cache.Ping(ctx); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, newEnv()) })
	}
}

func TestRedisCacheKeys(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.RedisClient(t, testenv.RedisURL(t))
	c := NewRedisCache(rdb)
	// within reports whether got is want give or take slack.
	within := func(got, want, slack time.Duration) bool { return got <= want && got > want-slack }

	t.Run("session key lives as long as the session", func(t *testing.T) {
		e := Entry{SessionID: store.NewID(), UserID: store.NewID(), ExpiresAt: time.Now().Add(time.Hour)}
		if err := c.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
		if ttl := rdb.PTTL(ctx, "session:"+e.SessionID).Val(); !within(ttl, time.Hour, 5*time.Second) {
			t.Fatalf("session:<sid> PTTL = %v, want about 1h", ttl)
		}
	})

	t.Run("user set holds the sessions and lives as long as the longest", func(t *testing.T) {
		uid := store.NewID()
		setKey := "user:" + uid + ":sessions"
		now := time.Now()
		entries := []Entry{
			{SessionID: store.NewID(), UserID: uid, ExpiresAt: now.Add(time.Hour)},
			{SessionID: store.NewID(), UserID: uid, ExpiresAt: now.Add(2 * time.Hour)},
			{SessionID: store.NewID(), UserID: uid, ExpiresAt: now.Add(30 * time.Minute)}, // must not shorten the set
		}
		var sids []string
		for i, e := range entries {
			if err := c.Put(ctx, e); err != nil {
				t.Fatal(err)
			}
			sids = append(sids, e.SessionID)
			longest := []time.Duration{time.Hour, 2 * time.Hour, 2 * time.Hour}[i]
			if ttl := rdb.TTL(ctx, setKey).Val(); !within(ttl, longest, 5*time.Second) {
				t.Fatalf("after Put %d: %s TTL = %v, want about %v", i, setKey, ttl, longest)
			}
		}
		members := rdb.SMembers(ctx, setKey).Val()
		if slices.Sort(members); !slices.Equal(members, slices.Sorted(slices.Values(sids))) {
			t.Fatalf("%s = %v, want %v", setKey, members, sids)
		}

		if err := c.Delete(ctx, uid, sids[0], sids[1]); err != nil {
			t.Fatal(err)
		}
		if m := rdb.SMembers(ctx, setKey).Val(); !slices.Equal(m, sids[2:]) {
			t.Fatalf("after Delete: %s = %v, want %v", setKey, m, sids[2:])
		}
		if n := rdb.Exists(ctx, "session:"+sids[0], "session:"+sids[1]).Val(); n != 0 {
			t.Fatalf("%d deleted session keys remain", n)
		}
		if err := c.Delete(ctx, uid, sids[2]); err != nil {
			t.Fatal(err)
		}
		if n := rdb.Exists(ctx, setKey, "session:"+sids[2]).Val(); n != 0 {
			t.Fatalf("after deleting every session %d keys remain", n)
		}
	})

	t.Run("Put of an expired entry stores nothing", func(t *testing.T) {
		e := Entry{SessionID: store.NewID(), UserID: store.NewID(), ExpiresAt: time.Now().Add(-time.Millisecond)}
		if err := c.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
		if n := rdb.Exists(ctx, "session:"+e.SessionID, "user:"+e.UserID+":sessions").Val(); n != 0 {
			t.Fatalf("%d keys stored for an expired entry", n)
		}
	})

	t.Run("a sub-second session still expires", func(t *testing.T) {
		e := Entry{SessionID: store.NewID(), UserID: store.NewID(), ExpiresAt: time.Now().Add(300 * time.Millisecond)}
		if err := c.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
		if ttl := rdb.PTTL(ctx, "session:"+e.SessionID).Val(); ttl <= 0 || ttl > 300*time.Millisecond {
			t.Fatalf("session:<sid> PTTL = %v, want (0, 300ms]", ttl)
		}
		if ttl := rdb.PTTL(ctx, "user:"+e.UserID+":sessions").Val(); ttl <= 0 {
			t.Fatalf("user set PTTL = %v, want it to expire", ttl)
		}
	})

	t.Run("unreadable cached value is an error, not a hit", func(t *testing.T) {
		sid := store.NewID()
		if err := rdb.Set(ctx, "session:"+sid, "not json", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		if e, err := c.Get(ctx, sid); err == nil || errors.Is(err, ErrMiss) {
			t.Fatalf("Get = %+v, %v; want a decode error", e, err)
		}
	})
}

func TestRedisCacheDown(t *testing.T) {
	ctx := context.Background()
	rds := testenv.StartRedis(t)
	c := NewRedisCache(testenv.RedisClient(t, rds.URL))
	rds.Stop()
	e := Entry{SessionID: store.NewID(), UserID: store.NewID(), ExpiresAt: time.Now().Add(time.Hour)}
	// Every operation reports the outage; none passes it off as a miss.
	if err := c.Put(ctx, e); err == nil {
		t.Error("Put succeeded with Redis down")
	}
	if _, err := c.Get(ctx, e.SessionID); err == nil || errors.Is(err, ErrMiss) {
		t.Errorf("Get with Redis down = %v, want an error other than ErrMiss", err)
	}
	if err := c.Delete(ctx, e.UserID, e.SessionID); err == nil {
		t.Error("Delete succeeded with Redis down")
	}
	if err := c.Ping(ctx); err == nil {
		t.Error("Ping succeeded with Redis down")
	}
}
