package chat

import (
	"context"
	"log/slog"
	"testing"

	"github.com/parley-chat/parley/store"
)

func TestMemberOfAny(t *testing.T) {
	_, st, chatID, users := startWriter(t)
	ctx := context.Background()
	unknown := store.NewID()
	cases := []struct {
		name    string
		warm    bool // the chat is cached before the question
		userID  string
		chatIDs []string
		want    bool
	}{
		{"a member, chat cached", true, users[0], []string{unknown, chatID}, true},
		{"a member, chat not cached (another node's, say)", false, users[1], []string{unknown, chatID}, true},
		{"a stranger", true, store.NewID(), []string{unknown, chatID}, false},
		{"a member asked about other chats only", false, users[0], []string{unknown}, false},
		{"no chats asked about", false, users[0], nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			svc := New(st, nil, DefaultLimits, slog.New(slog.DiscardHandler))
			if tc.warm {
				if _, err := svc.chat(ctx, users[0], chatID); err != nil {
					t.Fatal(err)
				}
			}
			got, err := svc.MemberOfAny(ctx, tc.userID, tc.chatIDs)
			if err != nil || got != tc.want {
				t.Fatalf("MemberOfAny = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
