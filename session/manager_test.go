package session

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parley-chat/parley/internal/testenv"
	"github.com/parley-chat/parley/store"
	"github.com/parley-chat/parley/store/sqlite"
)

func newStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

var discardLog = slog.New(slog.DiscardHandler)

// managerCache is one Cache the manager is tested with, and a way to reach
// behind the manager's back into it.
type managerCache struct {
	name string
	new  func(t *testing.T) (Cache, *redis.Client) // the client is nil for the memory cache
}

var managerCaches = []managerCache{
	{"memory", func(*testing.T) (Cache, *redis.Client) { return NewMemoryCache(), nil }},
	{"redis", func(t *testing.T) (Cache, *redis.Client) {
		rdb := testenv.RedisClient(t, testenv.RedisURL(t))
		return NewRedisCache(rdb), rdb
	}},
}

// endCall is one call of an OnEnd listener.
type endCall struct {
	userID string
	sids   []string
}

// endLog records OnEnd calls.
type endLog struct {
	mu    sync.Mutex
	calls []endCall
}

func (l *endLog) listen(userID string, sids []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, endCall{userID, slices.Sorted(slices.Values(sids))})
}

func (l *endLog) take() []endCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.calls
	l.calls = nil
	return c
}

// mtest is one manager test's world.
type mtest struct {
	t     *testing.T
	ctx   context.Context
	st    *sqlite.Store
	cache Cache
	rdb   *redis.Client // nil for the memory cache
	m     *Manager
}

func (x *mtest) create(userID string) *store.Session {
	x.t.Helper()
	s, err := x.m.Create(x.ctx, userID, "test-agent")
	if err != nil {
		x.t.Fatalf("Create: %v", err)
	}
	return s
}

func (x *mtest) checkOK(userID, sid string) {
	x.t.Helper()
	if err := x.m.Check(x.ctx, userID, sid); err != nil {
		x.t.Fatalf("Check(%s, %s) = %v, want nil", userID, sid, err)
	}
}

func (x *mtest) checkEnded(userID, sid string) {
	x.t.Helper()
	if err := x.m.Check(x.ctx, userID, sid); !errors.Is(err, ErrEnded) {
		x.t.Fatalf("Check(%s, %s) = %v, want ErrEnded", userID, sid, err)
	}
}

// cached reports whether the cache holds sid, asking it directly.
func (x *mtest) cached(sid string) bool {
	x.t.Helper()
	_, err := x.cache.Get(x.ctx, sid)
	if err != nil && !errors.Is(err, ErrMiss) {
		x.t.Fatal(err)
	}
	return err == nil
}

// drop removes sid from the cache behind the manager's back: for Redis the
// key is deleted directly.
func (x *mtest) drop(userID, sid string) {
	x.t.Helper()
	var err error
	if x.rdb != nil {
		err = x.rdb.Del(x.ctx, "session:"+sid).Err()
	} else {
		err = x.cache.Delete(x.ctx, userID, sid)
	}
	if err != nil {
		x.t.Fatal(err)
	}
	if x.cached(sid) {
		x.t.Fatal("drop left the session cached")
	}
}

// pendingPurges is the set of sessions with a pending purge note.
func (x *mtest) pendingPurges() map[string]bool {
	x.t.Helper()
	ps, err := x.st.SessionPurges(x.ctx, "", 1000, true)
	if err != nil {
		x.t.Fatal(err)
	}
	out := map[string]bool{}
	for _, p := range ps {
		out[p.SessionID] = true
	}
	return out
}

func (x *mtest) inStore(sid string) bool {
	x.t.Helper()
	_, err := x.st.SessionByID(x.ctx, sid)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		x.t.Fatal(err)
	}
	return err == nil
}

// reconciled has m replay its notes once, so that it trusts its cache as a
// running server's manager does.
func reconciled(t *testing.T, m *Manager) *Manager {
	t.Helper()
	if err := m.Reconcile(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestManagerStaleRedisAfterRestart ends a session while Redis is down;
// Redis then comes back with the data it had (the ended session's entry
// included). The manager must refuse the session at once, and the stale
// entry must go.
func TestManagerStaleRedisAfterRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rds := testenv.StartPersistentRedis(t)
	rdb := testenv.RedisClient(t, rds.URL)
	cache := NewRedisCache(rdb)
	st := newStore(t)
	x := &mtest{t: t, ctx: ctx, st: st, cache: cache, m: reconciled(t, NewManager(st, cache, time.Hour, discardLog))}
	uid := store.NewID()
	s, keep := x.create(uid), x.create(uid)
	x.checkOK(uid, s.ID)
	reconciled(t, x.m)
	if !x.m.trusted(cache.Epoch()) {
		t.Fatal("a reconciled manager does not trust its cache")
	}

	rds.Stop(t)
	if err := x.m.End(ctx, uid, s.ID); err != nil {
		t.Fatalf("End with Redis down: %v", err)
	}
	rds.Start(t)
	direct := testenv.RedisClient(t, rds.URL)
	if direct.Exists(ctx, "session:"+s.ID).Val() != 1 {
		t.Fatal("Redis did not come back with the stale entry")
	}
	x.checkEnded(uid, s.ID)
	x.checkOK(uid, keep.ID)

	// A second manager (a restarted node, or another node) on the same
	// store and Redis refuses it too.
	other := NewManager(st, NewRedisCache(testenv.RedisClient(t, rds.URL)), time.Hour, discardLog)
	if err := other.Check(ctx, uid, s.ID); !errors.Is(err, ErrEnded) {
		t.Fatalf("another node: Check = %v, want ErrEnded", err)
	}
	if err := other.Reconcile(ctx, false); err != nil {
		t.Fatal(err)
	}
	if direct.Exists(ctx, "session:"+s.ID).Val() != 0 {
		t.Fatal("the reconcile left the stale entry in Redis")
	}
	if err := other.Check(ctx, uid, s.ID); !errors.Is(err, ErrEnded) {
		t.Fatalf("after the reconcile: Check = %v, want ErrEnded", err)
	}
	if err := other.Check(ctx, uid, keep.ID); err != nil {
		t.Fatalf("a live session: %v", err)
	}
}

func TestManager(t *testing.T) {
	cases := []struct {
		name string
		run  func(x *mtest)
	}{
		{"Create then Check", func(x *mtest) {
			uid := store.NewID()
			before := time.Now().Add(-time.Millisecond)
			s := x.create(uid)
			if s.ID == "" || s.UserID != uid || s.UserAgent != "test-agent" ||
				s.CreatedAt.Before(before) || !s.LastSeenAt.Equal(s.CreatedAt) || !s.ExpiresAt.Equal(s.CreatedAt.Add(time.Hour)) {
				t := x.t
				t.Fatalf("Create = %+v", s)
			}
			got, err := x.st.SessionByID(x.ctx, s.ID)
			if err != nil || got.UserID != uid || !got.ExpiresAt.Equal(s.ExpiresAt) {
				x.t.Fatalf("store holds %+v, %v", got, err)
			}
			if e, err := x.cache.Get(x.ctx, s.ID); err != nil || e.UserID != uid || !e.ExpiresAt.Equal(s.ExpiresAt) {
				x.t.Fatalf("cache holds %+v, %v", e, err)
			}
			x.checkOK(uid, s.ID)
			x.checkOK(uid, s.ID)
			if ss, err := x.m.List(x.ctx, uid); err != nil || len(ss) != 1 || ss[0].ID != s.ID {
				x.t.Fatalf("List = %+v, %v", ss, err)
			}
		}},
		{"Check of an unknown session", func(x *mtest) {
			x.checkEnded(store.NewID(), store.NewID())
			x.checkEnded("", "")
		}},
		{"Check with the wrong user", func(x *mtest) {
			uid := store.NewID()
			s := x.create(uid)
			x.checkEnded(store.NewID(), s.ID) // answered by the cache
			x.drop(uid, s.ID)
			x.checkEnded(store.NewID(), s.ID) // answered by the store
			if x.cached(s.ID) {
				x.t.Fatal("a refused Check filled the cache")
			}
			x.checkOK(uid, s.ID)
		}},
		{"a cache miss is answered by the store and refills the cache", func(x *mtest) {
			uid := store.NewID()
			s := x.create(uid)
			x.drop(uid, s.ID)
			x.checkOK(uid, s.ID)
			if !x.cached(s.ID) {
				x.t.Fatal("Check after a miss did not refill the cache")
			}
			if x.rdb != nil {
				if ttl := x.rdb.PTTL(x.ctx, "session:"+s.ID).Val(); ttl <= 0 || ttl > time.Hour {
					x.t.Fatalf("refilled key PTTL = %v, want the time left", ttl)
				}
			}
		}},
		{"End", func(x *mtest) {
			uid := store.NewID()
			s, keep := x.create(uid), x.create(uid)
			x.checkOK(uid, s.ID)
			if err := x.m.End(x.ctx, uid, s.ID); err != nil {
				x.t.Fatal(err)
			}
			x.checkEnded(uid, s.ID)
			if x.cached(s.ID) || x.inStore(s.ID) {
				x.t.Fatal("ended session still cached or stored")
			}
			x.checkOK(uid, keep.ID)
			if err := x.m.End(x.ctx, uid, s.ID); !errors.Is(err, store.ErrNotFound) {
				x.t.Fatalf("second End = %v, want ErrNotFound", err)
			}
			if x.rdb != nil {
				if m := x.rdb.SMembers(x.ctx, "user:"+uid+":sessions").Val(); !slices.Equal(m, []string{keep.ID}) {
					x.t.Fatalf("user set = %v, want [%s]", m, keep.ID)
				}
			}
		}},
		{"End of another user's session is not found", func(x *mtest) {
			owner, other := store.NewID(), store.NewID()
			s := x.create(owner)
			x.create(other)
			err := x.m.End(x.ctx, other, s.ID)
			if !errors.Is(err, store.ErrNotFound) {
				x.t.Fatalf("End by another user = %v, want store.ErrNotFound", err)
			}
			if !x.inStore(s.ID) || !x.cached(s.ID) {
				x.t.Fatal("another user's End removed the session")
			}
			x.checkOK(owner, s.ID)
			if err := x.m.End(x.ctx, owner, store.NewID()); !errors.Is(err, store.ErrNotFound) {
				x.t.Fatalf("End of an unknown session = %v, want store.ErrNotFound", err)
			}
		}},
		{"EndAll except one", func(x *mtest) {
			uid, other := store.NewID(), store.NewID()
			s1, s2, s3 := x.create(uid), x.create(uid), x.create(uid)
			o := x.create(other)
			if err := x.m.EndAll(x.ctx, uid, s2.ID); err != nil {
				x.t.Fatal(err)
			}
			x.checkEnded(uid, s1.ID)
			x.checkEnded(uid, s3.ID)
			x.checkOK(uid, s2.ID)
			x.checkOK(other, o.ID)
			if x.cached(s1.ID) || x.cached(s3.ID) {
				x.t.Fatal("ended sessions still cached")
			}
			if ss, err := x.m.List(x.ctx, uid); err != nil || len(ss) != 1 || ss[0].ID != s2.ID {
				x.t.Fatalf("List = %+v, %v; want only the kept session", ss, err)
			}
			if err := x.m.EndAll(x.ctx, uid, ""); err != nil {
				x.t.Fatal(err)
			}
			x.checkEnded(uid, s2.ID)
			x.checkOK(other, o.ID)
			if err := x.m.EndAll(x.ctx, uid, ""); err != nil {
				x.t.Fatalf("EndAll with no sessions left: %v", err)
			}
		}},
		{"OnEnd listeners hear of End and EndAll", func(x *mtest) {
			var a, b endLog
			x.m.OnEnd(a.listen)
			x.m.OnEnd(b.listen)
			uid := store.NewID()
			s1, s2, s3, s4 := x.create(uid), x.create(uid), x.create(uid), x.create(uid)

			if err := x.m.End(x.ctx, uid, s1.ID); err != nil {
				x.t.Fatal(err)
			}
			want := []endCall{{uid, []string{s1.ID}}}
			for _, l := range []*endLog{&a, &b} {
				if got := l.take(); !equalCalls(got, want) {
					x.t.Fatalf("after End: listener got %v, want %v", got, want)
				}
			}

			_ = x.m.End(x.ctx, store.NewID(), s2.ID) // refused: not the owner
			if err := x.m.EndAll(x.ctx, uid, s3.ID); err != nil {
				x.t.Fatal(err)
			}
			want = []endCall{{uid, slices.Sorted(slices.Values([]string{s2.ID, s4.ID}))}}
			for _, l := range []*endLog{&a, &b} {
				if got := l.take(); !equalCalls(got, want) {
					x.t.Fatalf("after a refused End and EndAll: listener got %v, want %v", got, want)
				}
			}

			if err := x.m.EndAll(x.ctx, store.NewID(), ""); err != nil {
				x.t.Fatal(err)
			}
			if got := a.take(); len(got) != 0 {
				x.t.Fatalf("EndAll that ended nothing was announced: %v", got)
			}
		}},
		{"an expired session is ended", func(x *mtest) {
			m := NewManager(x.st, x.cache, time.Millisecond, discardLog)
			uid := store.NewID()
			s, err := m.Create(x.ctx, uid, "")
			if err != nil {
				x.t.Fatal(err)
			}
			for deadline := time.Now().Add(2 * time.Second); !time.Now().After(s.ExpiresAt); {
				if time.Now().After(deadline) {
					x.t.Fatal("the clock did not pass the session's expiry")
				}
				time.Sleep(time.Millisecond) // poll interval, not synchronisation
			}
			// Redis may keep its copy a moment longer (it counts whole
			// milliseconds from its own clock); the manager refuses it anyway.
			if err := m.Check(x.ctx, uid, s.ID); !errors.Is(err, ErrEnded) {
				x.t.Fatalf("Check of an expired session = %v, want ErrEnded", err)
			}
			x.drop(uid, s.ID)
			if err := m.Check(x.ctx, uid, s.ID); !errors.Is(err, ErrEnded) {
				x.t.Fatalf("Check of an expired session from the store = %v, want ErrEnded", err)
			}
			if x.cached(s.ID) {
				x.t.Fatal("Check cached an expired session")
			}
		}},
		{"a cached session is refused once the manager's clock passes its expiry", func(x *mtest) {
			clock := testenv.NewClock(time.Now())
			x.m.now = clock.Now
			uid := store.NewID()
			s := x.create(uid)
			x.checkOK(uid, s.ID)
			clock.Advance(time.Hour)
			if !x.cached(s.ID) && x.rdb != nil {
				x.t.Fatal("Redis dropped the key early") // Redis keeps real time
			}
			x.checkEnded(uid, s.ID)
		}},
		{"Check records lastSeenAt at most once a minute", func(x *mtest) {
			clock := testenv.NewClock(time.Now())
			x.m.now = clock.Now
			uid := store.NewID()
			s := x.create(uid)
			lastSeen := func() time.Time {
				got, err := x.st.SessionByID(x.ctx, s.ID)
				if err != nil {
					x.t.Fatal(err)
				}
				return got.LastSeenAt
			}
			x.checkOK(uid, s.ID)
			if !lastSeen().Equal(s.CreatedAt) {
				x.t.Fatal("the first Check after Create wrote lastSeenAt")
			}
			clock.Advance(2 * time.Minute)
			x.checkOK(uid, s.ID)
			want := clock.Now().UTC().Truncate(time.Millisecond)
			if got := lastSeen(); !got.Equal(want) {
				x.t.Fatalf("lastSeenAt = %v, want %v", got, want)
			}
			clock.Advance(30 * time.Second)
			x.checkOK(uid, s.ID)
			if got := lastSeen(); !got.Equal(want) {
				x.t.Fatalf("lastSeenAt moved within a minute: %v, want %v", got, want)
			}
		}},
		{"a long user agent is cut on a character boundary", func(x *mtest) {
			ua := strings.Repeat("a", 255) + "é" + strings.Repeat("b", 10)
			s, err := x.m.Create(x.ctx, store.NewID(), ua)
			if err != nil {
				x.t.Fatal(err)
			}
			if s.UserAgent != strings.Repeat("a", 255) {
				x.t.Fatalf("UserAgent = %q (%d bytes)", s.UserAgent, len(s.UserAgent))
			}
		}},
	}
	for _, mc := range managerCaches {
		t.Run(mc.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel() // each case has its own store and ids
					cache, rdb := mc.new(t)
					st := newStore(t)
					c.run(&mtest{t: t, ctx: context.Background(), st: st, cache: cache, rdb: rdb,
						m: reconciled(t, NewManager(st, cache, time.Hour, discardLog))})
				})
			}
		})
	}
}

func equalCalls(a, b []endCall) bool {
	return slices.EqualFunc(a, b, func(x, y endCall) bool { return x.userID == y.userID && slices.Equal(x.sids, y.sids) })
}

// hookedStore is the real SQLite store with hooks run after some calls: it
// forces interleavings of concurrent requests that the real store cannot
// produce on demand. Each hook runs once.
type hookedStore struct {
	*sqlite.Store
	mu                 sync.Mutex
	afterSessionByID   func()
	afterCreateSession func()
}

func (h *hookedStore) take(hook *func()) func() {
	h.mu.Lock()
	defer h.mu.Unlock()
	fn := *hook
	*hook = nil
	return fn
}

func (h *hookedStore) SessionByID(ctx context.Context, id string) (*store.Session, error) {
	s, err := h.Store.SessionByID(ctx, id)
	if fn := h.take(&h.afterSessionByID); fn != nil {
		fn()
	}
	return s, err
}

func (h *hookedStore) CreateSession(ctx context.Context, s *store.Session) error {
	err := h.Store.CreateSession(ctx, s)
	if fn := h.take(&h.afterCreateSession); fn != nil {
		fn()
	}
	return err
}

// TestManagerEndRacesFill ends a session between the store read (or write)
// and the cache fill of another request: the fill must not bring the ended
// session back into the cache, where it would pass every Check until it
// expires.
func TestManagerEndRacesFill(t *testing.T) {
	t.Parallel()
	for _, mc := range managerCaches {
		t.Run(mc.name, func(t *testing.T) {
			t.Run("End during a Check that missed the cache", func(t *testing.T) {
				cache, rdb := mc.new(t)
				hs := &hookedStore{Store: newStore(t)}
				x := &mtest{t: t, ctx: context.Background(), st: hs.Store, cache: cache, rdb: rdb}
				x.m = reconciled(t, NewManager(hs, cache, time.Hour, discardLog))
				uid := store.NewID()
				s := x.create(uid)
				x.drop(uid, s.ID)
				hs.mu.Lock()
				hs.afterSessionByID = func() {
					if err := x.m.End(x.ctx, uid, s.ID); err != nil {
						t.Errorf("End: %v", err)
					}
				}
				hs.mu.Unlock()
				// Check may answer either way (the End is concurrent with it)
				// but must not leave the session cached.
				_ = x.m.Check(x.ctx, uid, s.ID)
				if x.cached(s.ID) {
					t.Fatal("the ended session is back in the cache")
				}
				x.checkEnded(uid, s.ID)
			})
			t.Run("EndAll during a Create", func(t *testing.T) {
				cache, rdb := mc.new(t)
				hs := &hookedStore{Store: newStore(t)}
				x := &mtest{t: t, ctx: context.Background(), st: hs.Store, cache: cache, rdb: rdb}
				x.m = reconciled(t, NewManager(hs, cache, time.Hour, discardLog))
				uid := store.NewID()
				hs.mu.Lock()
				hs.afterCreateSession = func() {
					if err := x.m.EndAll(x.ctx, uid, ""); err != nil {
						t.Errorf("EndAll: %v", err)
					}
				}
				hs.mu.Unlock()
				s := x.create(uid)
				if x.cached(s.ID) {
					t.Fatal("a session ended during its Create is cached")
				}
				x.checkEnded(uid, s.ID)
			})
		})
	}
}

// TestManagerRedisDown stops the manager's Redis: sessions are created,
// checked and ended against the store alone.
func TestManagerRedisDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rds := testenv.StartRedis(t)
	cache := NewRedisCache(testenv.RedisClient(t, rds.URL))
	x := &mtest{t: t, ctx: ctx, st: newStore(t), cache: cache}
	x.m = NewManager(x.st, cache, time.Hour, discardLog)
	var ends endLog
	x.m.OnEnd(ends.listen)
	uid := store.NewID()
	before := x.create(uid) // cached while Redis was up
	x.checkOK(uid, before.ID)

	rds.Stop()
	if err := cache.Ping(ctx); err == nil {
		t.Fatal("Redis still answers after Stop")
	}
	x.checkOK(uid, before.ID)
	x.checkEnded(store.NewID(), before.ID)
	during := x.create(uid)
	x.checkOK(uid, during.ID)
	other := x.create(uid)

	if err := x.m.End(ctx, uid, during.ID); err != nil {
		t.Fatalf("End with Redis down: %v", err)
	}
	x.checkEnded(uid, during.ID)
	if err := x.m.End(ctx, uid, before.ID); err != nil {
		t.Fatalf("End with Redis down: %v", err)
	}
	x.checkEnded(uid, before.ID)
	x.checkOK(uid, other.ID)
	if err := x.m.EndAll(ctx, uid, ""); err != nil {
		t.Fatalf("EndAll with Redis down: %v", err)
	}
	x.checkEnded(uid, other.ID)
	// The cache could not be told, so the store keeps pending purge notes
	// until a reconcile lands the delete.
	pending := x.pendingPurges()
	for _, sid := range []string{before.ID, during.ID, other.ID} {
		if !pending[sid] {
			t.Errorf("session %s ended with Redis down has no pending purge note", sid)
		}
	}
	want := []endCall{{uid, []string{during.ID}}, {uid, []string{before.ID}}, {uid, []string{other.ID}}}
	if got := ends.take(); !equalCalls(got, want) {
		t.Fatalf("OnEnd with Redis down got %v, want %v", got, want)
	}
}

// linkProxy forwards TCP connections to a target and can cut the link: down
// closes the listener and every connection (clients see a refused dial, as
// when Redis is down), up listens again at the same address.
type linkProxy struct {
	t      *testing.T
	addr   string
	mu     sync.Mutex
	target string
	ln     net.Listener
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newLinkProxy(t *testing.T, target string) *linkProxy {
	p := &linkProxy{t: t, target: target, addr: "127.0.0.1:0", conns: map[net.Conn]struct{}{}}
	p.up()
	t.Cleanup(func() { p.down(); p.wg.Wait() })
	return p
}

func (p *linkProxy) up() {
	p.t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy listen %s: %v", p.addr, err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	p.wg.Add(1)
	go p.serve(ln)
}

func (p *linkProxy) serve(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		target, live := p.target, p.ln == ln
		p.mu.Unlock()
		if !live {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[s] = struct{}{}, struct{}{}
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		p.wg.Add(2)
		go pipe(c, s)
		go pipe(s, c)
	}
}

func (p *linkProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
}

func (p *linkProxy) retarget(target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = target
}

// TestManagerRedisComesBack ends a session while the link to Redis is cut,
// then restores it: the session must stay refused although Redis may still
// hold its cached copy, and the pending delete must land.
func TestManagerRedisComesBack(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// back restores the link: to the same Redis (a healed partition,
		// stale key included) or to a new one at the same address.
		back func(t *testing.T, px *linkProxy, old *testenv.Redis) *redis.Client
	}{
		{"same Redis, stale key still there", func(t *testing.T, px *linkProxy, old *testenv.Redis) *redis.Client {
			px.up()
			return testenv.RedisClient(t, old.URL)
		}},
		{"new Redis at the same address", func(t *testing.T, px *linkProxy, old *testenv.Redis) *redis.Client {
			old.Stop()
			fresh := testenv.StartRedis(t)
			px.retarget(fresh.Addr)
			px.up()
			return testenv.RedisClient(t, fresh.URL)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			rds := testenv.StartRedis(t)
			px := newLinkProxy(t, rds.Addr)
			cache := NewRedisCache(testenv.RedisClient(t, "redis://"+px.addr+"/0"))
			x := &mtest{t: t, ctx: ctx, st: newStore(t), cache: cache}
			x.m = NewManager(x.st, cache, time.Hour, discardLog)
			uid := store.NewID()
			s := x.create(uid)
			x.checkOK(uid, s.ID)

			px.down()
			if err := cache.Ping(ctx); err == nil {
				t.Fatal("Redis still reachable through a cut link")
			}
			if err := x.m.End(ctx, uid, s.ID); err != nil {
				t.Fatalf("End with the link cut: %v", err)
			}
			x.checkEnded(uid, s.ID)

			direct := c.back(t, px, rds)
			x.checkEnded(uid, s.ID)
			if direct.Exists(ctx, "session:"+s.ID).Val() == 1 {
				t.Log("Check ran while Redis still held the ended session: the tombstone refused it")
			}

			// The reconcile lands the delete and the note is done.
			runCtx, stop := context.WithCancel(ctx)
			defer stop()
			go x.m.Run(runCtx, 20*time.Millisecond)
			for deadline := time.Now().Add(4 * time.Second); ; {
				pending := x.pendingPurges()[s.ID]
				if !pending && direct.Exists(ctx, "session:"+s.ID).Val() == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the delete did not land (note pending %v)", pending)
				}
				time.Sleep(10 * time.Millisecond) // poll interval, not synchronisation
			}
			if direct.SIsMember(ctx, "user:"+uid+":sessions", s.ID).Val() {
				t.Fatal("the ended session is still in user:<uid>:sessions")
			}
			x.checkEnded(uid, s.ID)
			if direct.Exists(ctx, "session:"+s.ID).Val() != 0 {
				t.Fatal("a refused Check cached the ended session")
			}

			// The cache serves again.
			s2 := x.create(uid)
			x.checkOK(uid, s2.ID)
			if direct.Exists(ctx, "session:"+s2.ID).Val() != 1 {
				t.Fatal("a new session is not cached once Redis is back")
			}
		})
	}
}
