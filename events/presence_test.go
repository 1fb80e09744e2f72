package events

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/parley-chat/parley/internal/wire"
)

func TestMemoryTracker(t *testing.T) {
	ctx := context.Background()
	tr := NewMemoryTracker()
	step := func(what string, got, want bool) {
		t.Helper()
		if got != want {
			t.Fatalf("%s: got %v, want %v", what, got, want)
		}
	}
	first, _ := tr.Connect(ctx, userA, "k1")
	step("first connect is first", first, true)
	first, _ = tr.Connect(ctx, userA, "k2")
	step("second connect is not first", first, false)
	first, _ = tr.Connect(ctx, userA, "k2")
	step("a repeated key is not first", first, false)
	step("online", tr.Online(userA), true)
	last, _ := tr.Disconnect(ctx, userA, "unknown")
	step("an unknown key is not last", last, false)
	last, _ = tr.Disconnect(ctx, userA, "k1")
	step("one of two is not last", last, false)
	last, _ = tr.Disconnect(ctx, userA, "k2")
	step("the last one is last", last, true)
	step("offline", tr.Online(userA), false)
	last, _ = tr.Disconnect(ctx, userA, "k2")
	step("a second disconnect is not last", last, false)
}

// presenceEvents drains the presence events the fake fanout has seen.
func presenceEvents(h *harness) []string {
	h.out.mu.Lock()
	defer h.out.mu.Unlock()
	var out []string
	for _, e := range h.out.emits {
		if e.event == EventPresence {
			p := e.payload.(wire.Presence)
			out = append(out, fmt.Sprintf("%v %s online=%v", e.to, p.UserID, p.Online))
		}
	}
	h.out.emits = nil
	return out
}

func TestPresenceFirstAndLastSocket(t *testing.T) {
	h := newHarness(t)
	_, st1 := h.connect("s1", userA, sessA)
	if got, want := presenceEvents(h), []string{"[user:" + userB + "] " + userA + " online=true"}; !slices.Equal(got, want) {
		t.Fatalf("first connect announced %v, want %v", got, want)
	}
	if seen := recv(t, h.users.seen, "lastSeenAt on connect"); seen.user != userA {
		t.Fatalf("lastSeenAt stored for %s", seen.user)
	}
	if !h.s.Online(userA) {
		t.Fatal("not online with a socket")
	}
	_, st2 := h.connect("s2", userA, sessA2)
	if got := presenceEvents(h); len(got) != 0 {
		t.Fatalf("a second socket announced %v", got)
	}
	st1.teardown()
	st1.teardown() // the library may report a close twice; it counts once
	h.settle(t)
	if got := presenceEvents(h); len(got) != 0 || !h.s.Online(userA) {
		t.Fatalf("one of two sockets gone: announced %v, online %v", got, h.s.Online(userA))
	}
	st2.teardown()
	h.settle(t)
	if got, want := presenceEvents(h), []string{"[user:" + userB + "] " + userA + " online=false"}; !slices.Equal(got, want) {
		t.Fatalf("last disconnect announced %v, want %v", got, want)
	}
	if seen := recv(t, h.users.seen, "lastSeenAt on disconnect"); seen.user != userA || seen.at.IsZero() {
		t.Fatalf("lastSeenAt %+v", seen)
	}
	if h.s.Online(userA) {
		t.Fatal("online without sockets")
	}
}

func TestConnectReadsTheChatsOnce(t *testing.T) {
	h := newHarness(t)
	h.connect("s1", userA, sessA)
	if got, want := presenceEvents(h), []string{"[user:" + userB + "] " + userA + " online=true"}; !slices.Equal(got, want) {
		t.Fatalf("first connect announced %v, want %v", got, want)
	}
	h.chats.mu.Lock()
	lookups := h.chats.lookups
	h.chats.mu.Unlock()
	if lookups != 1 {
		t.Fatalf("a connect read the user's chats %d times, want once for its rooms and its announcement", lookups)
	}
}

func TestAnnouncementAfterARoomChangeLooksThePeersUpAgain(t *testing.T) {
	h := newHarness(t)
	c := newFakeConn("s1", userA, sessA)
	seen, err := h.s.enterRooms(c)
	if err != nil {
		t.Fatal(err)
	}
	// userA joins chat2 (userB, userC) after its lookup; the announcement
	// must reach userC too.
	h.chats.mu.Lock()
	h.chats.members[chat2] = append(h.chats.members[chat2], userA)
	h.chats.mu.Unlock()
	h.s.JoinChat([]string{userA}, chat2)
	h.s.userConnected(userA, "k1", &seen)
	if got, want := presenceEvents(h), []string{"[user:" + userB + " user:" + userC + "] " + userA + " online=true"}; !slices.Equal(got, want) {
		t.Fatalf("announced %v, want %v", got, want)
	}
}

func TestRecoveredSocketIDDoesNotConfusePresence(t *testing.T) {
	h := newHarness(t)
	// Connection-state recovery brings a socket back under its old id,
	// possibly before the old one's teardown has run.
	_, old := h.connect("same-id", userA, sessA)
	_, fresh := h.connect("same-id", userA, sessA)
	old.teardown()
	h.settle(t)
	if !h.s.Online(userA) {
		t.Fatal("the old socket's teardown took the recovered one offline")
	}
	fresh.teardown()
	h.settle(t)
	if h.s.Online(userA) {
		t.Fatal("still online after both went")
	}
}

func TestTeardownBeforeSetupLeavesNoTrace(t *testing.T) {
	h := newHarness(t)
	c := newFakeConn("s1", userA, sessA)
	gen, err := h.s.enterRooms(c)
	if err != nil {
		t.Fatal(err)
	}
	st := h.s.newConn(c)
	st.teardown() // the transport went before setup ran
	h.settle(t)
	st.setup(gen)
	if h.s.Online(userA) {
		t.Fatal("a socket that was gone before setup counts as online")
	}
}

func TestRevocationTellsAndDisconnects(t *testing.T) {
	h := newHarness(t)
	h.s.revoke(userA, []string{sessA, sessA2})
	h.out.mu.Lock()
	var got []string
	for _, e := range h.out.emits {
		got = append(got, fmt.Sprint(e.to, " ", e.event))
	}
	drops := slices.Clone(h.out.drops)
	h.out.mu.Unlock()
	want := []string{"[session:" + sessA + "] session:revoked", "[session:" + sessA2 + "] session:revoked"}
	if !slices.Equal(got, want) {
		t.Fatalf("emits %v, want %v", got, want)
	}
	if !slices.Equal(drops, []string{"session:" + sessA, "session:" + sessA2}) {
		t.Fatalf("disconnected %v", drops)
	}
}

func TestRevokedDuringHandshake(t *testing.T) {
	h := newHarness(t)
	// The session ends after the socket's token was checked but before
	// the socket joined its session room.
	h.s.revoke(userA, []string{sessA})
	c, _ := h.connect("s1", userA, sessA)
	c.mu.Lock()
	disconnected, emits := c.disconnected, slices.Clone(c.emits)
	c.mu.Unlock()
	if !disconnected || len(emits) != 1 || emits[0].event != EventSessionRevoked {
		t.Fatalf("disconnected %v emits %v", disconnected, emits)
	}
	if h.s.Online(userA) {
		t.Fatal("a revoked socket counts as online")
	}
	// Another session of the same user is not affected.
	c2, _ := h.connect("s2", userA, sessA2)
	if c2.disconnected {
		t.Fatal("a live session was disconnected")
	}
}
