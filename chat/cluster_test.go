package chat

import (
	"context"
	"log/slog"
	"testing"

	"github.com/parley-chat/parley/store"
)

// Another node removed a member in the shared store: this node's cached
// copy still lets them in until Forget (or ForgetAll) drops it. (A member
// added elsewhere is let in at once: see TestNewMemberBeforeTheNotice.)
func TestForgetDropsAnotherNodesChange(t *testing.T) {
	_, st, chatID, users := startWriter(t)
	ctx := context.Background()
	svc := New(st, nil, DefaultLimits, slog.New(slog.DiscardHandler))
	if _, err := svc.chat(ctx, users[0], chatID); err != nil { // cached now
		t.Fatal(err)
	}
	newcomer := store.NewID()
	if err := st.AddMembers(ctx, chatID, []store.Member{{UserID: newcomer, Role: store.RoleMember}}); err != nil {
		t.Fatal(err)
	}
	if err := st.RemoveMember(ctx, chatID, users[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.chat(ctx, users[1], chatID); err != nil {
		t.Fatalf("the stale copy already refuses the removed member: this test proves nothing (%v)", err)
	}

	svc.Forget(chatID)
	if _, err := svc.chat(ctx, newcomer, chatID); err != nil {
		t.Fatalf("after Forget the newcomer is refused: %v", err)
	}
	if _, err := svc.chat(ctx, users[1], chatID); err == nil {
		t.Fatal("after Forget the removed member is still let in")
	}

	// ForgetAll does the same for every chat.
	if err := st.AddMembers(ctx, chatID, []store.Member{{UserID: users[1], Role: store.RoleMember}}); err != nil {
		t.Fatal(err)
	}
	svc.ForgetAll()
	if _, err := svc.chat(ctx, users[1], chatID); err != nil {
		t.Fatalf("after ForgetAll the re-added member is refused: %v", err)
	}
}

// Two nodes on one store, before any notice of the change: a member added
// through node A is let in by node B at once, though B's cached copy of the
// chat predates them, and B keeps the fresh copy.
func TestNewMemberBeforeTheNotice(t *testing.T) {
	_, st, chatID, users := startWriter(t)
	ctx := context.Background()
	nodeA := New(st, nil, DefaultLimits, slog.New(slog.DiscardHandler))
	nodeB := New(st, nil, DefaultLimits, slog.New(slog.DiscardHandler))
	if _, err := nodeB.chat(ctx, users[0], chatID); err != nil { // B caches the chat
		t.Fatal(err)
	}
	newcomer := store.NewID()
	// What node A's AddMembers writes; no notice reaches B.
	if err := st.AddMembers(ctx, chatID, []store.Member{{UserID: newcomer, Role: store.RoleMember}}); err != nil {
		t.Fatal(err)
	}
	if _, err := nodeB.chat(ctx, newcomer, chatID); err != nil {
		t.Fatalf("node B refuses the member added on node A: %v", err)
	}
	// The fresh copy is cached: a stranger is still refused, and the
	// newcomer's next request is answered from the cache.
	if _, err := nodeB.chat(ctx, store.NewID(), chatID); err == nil {
		t.Fatal("a stranger is let in")
	}
	nodeB.mu.RLock()
	cached := memberOf(nodeB.chats[chatID], newcomer) != nil
	nodeB.mu.RUnlock()
	if !cached {
		t.Fatal("node B did not keep the copy that knows the newcomer")
	}
	if _, err := nodeA.chat(ctx, newcomer, chatID); err != nil {
		t.Fatalf("node A refuses its own newcomer: %v", err)
	}
	// A chat no node has seen, and one that does not exist.
	if _, err := New(st, nil, DefaultLimits, slog.New(slog.DiscardHandler)).chat(ctx, newcomer, chatID); err != nil {
		t.Fatalf("a cold node refuses the newcomer: %v", err)
	}
	if _, err := nodeB.chat(ctx, newcomer, store.NewID()); err == nil {
		t.Fatal("a chat that does not exist is found")
	}
}
