package events

import (
	"slices"
	"testing"
)

// A transition another node found (a reaped node's user) is announced and
// stored like this node's own.
func TestPresenceChangedAnnounces(t *testing.T) {
	h := newHarness(t)
	h.s.PresenceChanged(userA, false)
	if got, want := presenceEvents(h), []string{"[user:" + userB + "] " + userA + " online=false"}; !slices.Equal(got, want) {
		t.Fatalf("announced %v, want %v", got, want)
	}
	if seen := recv(t, h.users.seen, "lastSeenAt of the user gone offline"); seen.user != userA {
		t.Fatalf("lastSeenAt stored for %s", seen.user)
	}
	h.s.PresenceChanged(userA, true)
	recv(t, h.users.seen, "lastSeenAt of the user back online")
	if got, want := presenceEvents(h), []string{"[user:" + userB + "] " + userA + " online=true"}; !slices.Equal(got, want) {
		t.Fatalf("announced %v, want %v", got, want)
	}
}

// Sessions ended on another node are refused here too.
func TestSessionsEndedElsewhere(t *testing.T) {
	h := newHarness(t)
	if h.s.wasRevoked(sessA) {
		t.Fatal("a live session counts as revoked")
	}
	h.s.SessionsEnded(userA, []string{sessA})
	if !h.s.wasRevoked(sessA) {
		t.Fatal("a session ended on another node is not refused here")
	}
}

// Another node's room change counts as a membership change here, so a
// socket between its room lookup and its connect looks again.
func TestRoomChangeBumpsMembership(t *testing.T) {
	h := newHarness(t)
	before := h.s.membershipGen.Load()
	ran := false
	h.s.RoomChange(func() { ran = true })
	if !ran || h.s.membershipGen.Load() != before+1 {
		t.Fatalf("ran %v, generation %d → %d", ran, before, h.s.membershipGen.Load())
	}
}
