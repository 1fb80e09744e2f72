package mongo_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/testenv"
	"github.com/parley-chat/parley/store"
	"github.com/parley-chat/parley/store/mongo"
	"github.com/parley-chat/parley/store/storetest"
)

// open gives each test its own database on the shared server and drops it
// afterwards.
func open(t *testing.T) *mongo.Store {
	t.Helper()
	s, err := mongo.Open(t.Context(), testenv.MongoURI(t), testenv.MongoDatabase(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		// t.Context is already cancelled when cleanups run.
		if err := s.Drop(context.Background()); err != nil {
			t.Errorf("Drop: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) })
}

// The stored key of a message without a client id must never collide with a
// client id, whatever the client sends.
func TestClientMsgIDKeys(t *testing.T) {
	s := open(t)
	ctx := t.Context()
	chat, sender := store.NewID(), store.NewID()
	bare := &store.Message{ID: store.NewID(), ChatID: chat, Seq: 1, SenderID: sender, CreatedAt: time.Now()}
	mimic := &store.Message{ID: store.NewID(), ChatID: chat, Seq: 2, SenderID: sender,
		ClientMsgID: "n:" + bare.ID, CreatedAt: time.Now()}
	own := &store.Message{ID: store.NewID(), ChatID: chat, Seq: 3, SenderID: sender,
		ClientMsgID: bare.ID, CreatedAt: time.Now()}
	if n, err := s.InsertMessages(ctx, []*store.Message{bare, mimic, own}); n != 3 || err != nil {
		t.Fatalf("InsertMessages = %d, %v; want 3, nil", n, err)
	}
	msgs, _, err := s.History(ctx, chat, 0, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"", "n:" + bare.ID, bare.ID} {
		if msgs[i].ClientMsgID != want {
			t.Errorf("message %d ClientMsgID = %q, want %q", i+1, msgs[i].ClientMsgID, want)
		}
	}
	got, err := s.MessageByClientID(ctx, chat, sender, "n:"+bare.ID)
	if err != nil || got.ID != mimic.ID {
		t.Errorf("MessageByClientID(n:…) = %v, %v; want message %s", got, err, mimic.ID)
	}
	if _, err := s.MessageByClientID(ctx, chat, sender, ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("MessageByClientID(\"\") err = %v, want ErrNotFound", err)
	}
}

// Beyond the contract: membership writes on what does not exist say so.
func TestMembershipNotFound(t *testing.T) {
	s := open(t)
	ctx := t.Context()
	owner := store.NewID()
	c := store.Chat{ID: store.NewID(), Type: store.ChatGroup, Name: "g", CreatedAt: time.Now(),
		Members: []store.Member{{UserID: owner, Role: store.RoleOwner}}}
	c.DirectKey = "group:" + c.ID
	if err := s.CreateChat(ctx, &c); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetReadSeq(ctx, c.ID, store.NewID(), 3); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetReadSeq(stranger) err = %v, want ErrNotFound", err)
	}
	if err := s.AddMembers(ctx, store.NewID(), []store.Member{{UserID: owner, Role: store.RoleMember}}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("AddMembers(unknown chat) err = %v, want ErrNotFound", err)
	}
	dup := c
	dup.DirectKey = "group:other"
	if err := s.CreateChat(ctx, &dup); store.ConflictOn(err) != store.ConflictID {
		t.Errorf("CreateChat(taken id) err = %v, want conflict on id", err)
	}
	got, err := s.ChatByID(ctx, c.ID)
	if err != nil || len(got.Members) != 1 || got.DirectKey != c.DirectKey {
		t.Errorf("chat after refused duplicate id = %+v, %v", got, err)
	}
}
