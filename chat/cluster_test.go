package chat

import (
	"context"
	"log/slog"
	"testing"

	"github.com/parley-chat/parley/store"
)

// Another node changed a chat in the shared store: this node's cached copy
// answers from before the change until Forget (or ForgetAll) drops it.
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
	if _, err := svc.chat(ctx, newcomer, chatID); err == nil {
		t.Fatal("the stale copy already knows the newcomer: this test proves nothing")
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
