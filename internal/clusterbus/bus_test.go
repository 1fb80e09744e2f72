package clusterbus

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/testenv"
)

type node struct {
	bus        *Bus
	membership chan MembershipChange
	revoked    chan SessionsRevoked
	reconnects chan struct{}
}

// newNode is a bus handling both topics onto the node's channels; it is
// closed when t ends.
func newNode(t *testing.T, url, id string) *node {
	t.Helper()
	n := &node{membership: make(chan MembershipChange, 8), revoked: make(chan SessionsRevoked, 8), reconnects: make(chan struct{}, 8)}
	n.bus = New(testenv.RedisClient(t, url), Options{NodeID: id, OnReconnect: func() { n.reconnects <- struct{}{} }})
	Handle(n.bus, TopicMembership, func(m MembershipChange) { n.membership <- m })
	Handle(n.bus, TopicSessionsRevoked, func(s SessionsRevoked) { n.revoked <- s })
	t.Cleanup(func() { _ = n.bus.Close() })
	return n
}

func startNode(t *testing.T, url, id string) *node {
	t.Helper()
	n := newNode(t, url, id)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.bus.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestBusNotices(t *testing.T) {
	url := testenv.StartRedis(t).URL
	a, b := startNode(t, url, "a"), startNode(t, url, "b")
	ctx := context.Background()

	if err := a.bus.Publish(ctx, TopicMembership, MembershipChange{ChatID: "c1"}); err != nil {
		t.Fatal(err)
	}
	if err := a.bus.Publish(ctx, TopicSessionsRevoked, SessionsRevoked{UserID: "u1", SessionIDs: []string{"s1", "s2"}}); err != nil {
		t.Fatal(err)
	}
	if got := testenv.Receive(t, b.membership, "membership notice"); got.ChatID != "c1" {
		t.Fatalf("b got %+v", got)
	}
	if got := testenv.Receive(t, b.revoked, "revocation notice"); !reflect.DeepEqual(got, SessionsRevoked{UserID: "u1", SessionIDs: []string{"s1", "s2"}}) {
		t.Fatalf("b got %+v", got)
	}
	// A node does not hear itself: b's own notice reaches a, then a's
	// next notice is the first thing b hears.
	if err := b.bus.Publish(ctx, TopicMembership, MembershipChange{ChatID: "from-b"}); err != nil {
		t.Fatal(err)
	}
	if got := testenv.Receive(t, a.membership, "membership notice"); got.ChatID != "from-b" {
		t.Fatalf("a got %+v", got)
	}
	if err := a.bus.Publish(ctx, TopicMembership, MembershipChange{ChatID: "c2"}); err != nil {
		t.Fatal(err)
	}
	if got := testenv.Receive(t, b.membership, "membership notice"); got.ChatID != "c2" {
		t.Fatalf("b got %+v, want c2 (its own notice must not come back)", got)
	}
}

// After a Redis restart, or with Redis down when it starts, a bus
// subscribes by itself once Redis answers, says so, and receives notices
// published afterwards.
func TestBusRejoinsRedis(t *testing.T) {
	for _, tt := range testenv.RedisOutages {
		t.Run(tt.Name, func(t *testing.T) {
			redis := testenv.StartRedis(t)
			a := startNode(t, redis.URL, "a")
			if tt.DownAtStart {
				redis.Stop()
			}
			b := newNode(t, redis.URL, "b")
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := b.bus.Start(ctx); (err != nil) != tt.DownAtStart {
				t.Fatalf("Start: %v", err)
			}
			redis.Restart(t)
			testenv.Receive(t, b.reconnects, "b subscribed")
			testenv.Receive(t, a.reconnects, "a subscribed again")
			if err := a.bus.Publish(context.Background(), TopicMembership, MembershipChange{ChatID: "after"}); err != nil {
				t.Fatal(err)
			}
			if got := testenv.Receive(t, b.membership, "membership notice after the restart"); got.ChatID != "after" {
				t.Fatalf("b got %+v", got)
			}
		})
	}
}
