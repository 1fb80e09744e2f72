package events

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/testenv"
)

// Short beats so a vanished node is reaped quickly in tests; the defaults
// (5 s, 15 s) keep the contract's 30 s.
const (
	testBeat      = 50 * time.Millisecond
	testDeadAfter = time.Second
)

type presenceChange struct {
	user   string
	online bool
}

// newTracker is a tracker with the test beat, reporting its changes on the
// returned channel; it is stopped (without a goodbye) when t ends.
func newTracker(t *testing.T, url, node string) (*RedisTracker, chan presenceChange) {
	t.Helper()
	changes := make(chan presenceChange, 16)
	tr := NewRedisTracker(testenv.RedisClient(t, url), RedisTrackerOptions{
		NodeID: node, Interval: testBeat, DeadAfter: testDeadAfter,
		OnChange: func(u string, on bool) { changes <- presenceChange{u, on} },
		Logger:   slog.New(slog.DiscardHandler),
	})
	t.Cleanup(func() { tr.halt() })
	return tr, changes
}

func startTracker(t *testing.T, url, node string) (*RedisTracker, chan presenceChange) {
	t.Helper()
	tr, changes := newTracker(t, url, node)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return tr, changes
}

// eventually waits for cond: another node's view follows Redis through
// pub/sub, so it is a condition to wait for, not a sleep.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRedisTrackerAcrossNodes(t *testing.T) {
	url := testenv.StartRedis(t).URL
	ctx := context.Background()
	a, _ := startTracker(t, url, "a")
	b, _ := startTracker(t, url, "b")

	steps := []struct {
		tr        *RedisTracker
		connect   bool
		user, key string
		want      bool // first on connect, last on disconnect
	}{
		{a, true, "u1", "c1", true},
		{b, true, "u1", "c2", false},
		{a, true, "u1", "c1", false}, // the same connection twice counts once
		{a, false, "u1", "c1", false},
		{a, false, "u1", "nope", false}, // unknown: not last, no error
		{b, false, "u1", "c2", true},
		{b, true, "u1", "c3", true},
	}
	for i, s := range steps {
		var got bool
		var err error
		if s.connect {
			got, err = s.tr.Connect(ctx, s.user, s.key)
		} else {
			got, err = s.tr.Disconnect(ctx, s.user, s.key)
		}
		if err != nil || got != s.want {
			t.Fatalf("step %d (%+v): got %v, %v", i, s, got, err)
		}
	}
	eventually(t, "node a sees u1 online through node b", func() bool { return a.Online("u1") })
	if _, err := b.Disconnect(ctx, "u1", "c3"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "node a sees u1 offline", func() bool { return !a.Online("u1") })

	// A node started later learns who is online from Redis.
	if _, err := a.Connect(ctx, "u9", "c9"); err != nil {
		t.Fatal(err)
	}
	c, _ := startTracker(t, url, "c")
	if !c.Online("u9") || c.Online("u1") {
		t.Fatalf("new node: u9 online %v (want true), u1 online %v (want false)", c.Online("u9"), c.Online("u1"))
	}
}

// A node that vanishes without a goodbye stops counting: another node reaps
// it and reports its users offline, unless they are connected elsewhere.
func TestRedisTrackerVanishedNode(t *testing.T) {
	url := testenv.StartRedis(t).URL
	ctx := context.Background()
	a, _ := startTracker(t, url, "a")
	b, changesB := startTracker(t, url, "b")
	for _, c := range []struct {
		tr        *RedisTracker
		user, key string
	}{
		{a, "only-a", "k1"}, {a, "only-a", "k2"}, {a, "both", "k3"}, {b, "both", "k4"},
	} {
		if _, err := c.tr.Connect(ctx, c.user, c.key); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "b sees only-a online", func() bool { return b.Online("only-a") })

	a.halt() // killed: no goodbye

	if got := testenv.Receive(t, changesB, "presence change"); got != (presenceChange{"only-a", false}) {
		t.Fatalf("b reported %+v, want only-a offline", got)
	}
	if b.Online("only-a") || !b.Online("both") {
		t.Fatalf("after the reap: only-a online %v, both online %v", b.Online("only-a"), b.Online("both"))
	}
	// The user connected through b goes offline with b's own disconnect.
	if last, err := b.Disconnect(ctx, "both", "k4"); err != nil || !last {
		t.Fatalf("disconnect both on b: last %v, %v", last, err)
	}

	// a was alive after all (a stall): its next beat registers its
	// connections again and reports who is back.
	if err := a.tick(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b sees only-a back", func() bool { return b.Online("only-a") && b.Online("both") })
}

func TestRedisTrackerGoodbye(t *testing.T) {
	url := testenv.StartRedis(t).URL
	ctx := context.Background()
	a, _ := startTracker(t, url, "a")
	b, _ := startTracker(t, url, "b")
	for _, u := range []string{"x", "y"} {
		if _, err := a.Connect(ctx, u, "k"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Connect(ctx, "y", "k"); err != nil {
		t.Fatal(err)
	}
	gone, err := a.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(gone, []string{"x"}) {
		t.Fatalf("goodbye took %v offline, want [x]", gone)
	}
	eventually(t, "b sees x offline", func() bool { return !b.Online("x") && b.Online("y") })
}

// A node restarted under the same NodeID forgets what its previous life
// left: those connections are gone with the old process.
func TestRedisTrackerRestartedNode(t *testing.T) {
	url := testenv.StartRedis(t).URL
	ctx := context.Background()
	old, _ := startTracker(t, url, "n1")
	if _, err := old.Connect(ctx, "u1", "k1"); err != nil {
		t.Fatal(err)
	}
	old.halt() // killed, and restarted at once
	fresh, changes := startTracker(t, url, "n1")
	if got := testenv.Receive(t, changes, "presence change"); got != (presenceChange{"u1", false}) {
		t.Fatalf("restarted node reported %+v, want u1 offline", got)
	}
	if fresh.Online("u1") {
		t.Fatal("u1 still online after its node restarted")
	}
}

// After a Redis restart (every registration lost) or with Redis down at
// start-up, a node registers its connections by itself once Redis answers
// and announces their users; other nodes see them online.
func TestRedisTrackerRejoinsRedis(t *testing.T) {
	for _, tt := range testenv.RedisOutages {
		t.Run(tt.Name, func(t *testing.T) {
			redis := tt.Start(t)
			a, changes := newTracker(t, redis.URL, "a")
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := a.Start(ctx); (err != nil) != tt.DownAtStart {
				t.Fatalf("Start: %v", err)
			}
			if _, err := a.Connect(ctx, "u1", "k1"); (err != nil) != tt.DownAtStart {
				t.Fatalf("Connect: %v", err)
			}
			redis.Restart(t)
			if got := testenv.Receive(t, changes, "presence change"); got != (presenceChange{"u1", true}) {
				t.Fatalf("a reported %+v, want u1 online once registered", got)
			}
			b, _ := startTracker(t, redis.URL, "b")
			if !b.Online("u1") {
				t.Fatal("another node does not see u1 online")
			}
			eventually(t, "a sees u1 online", func() bool { return a.Online("u1") })
		})
	}
}
