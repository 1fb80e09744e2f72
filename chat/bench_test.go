package chat_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/testenv"
	"github.com/parley-chat/parley/store"
	mongostore "github.com/parley-chat/parley/store/mongo"
	"github.com/parley-chat/parley/store/sqlite"
)

type nopBroadcaster struct{}

func (nopBroadcaster) ToChat(string, string, any, string) {}
func (nopBroadcaster) ToUsers([]string, string, any)      {}
func (nopBroadcaster) JoinChat([]string, string)          {}
func (nopBroadcaster) LeaveChat([]string, string)         {}

// BenchmarkSend measures acked sends through the whole store path (member
// check, numbering, group commit) with many senders at once on a few
// chats, as a busy node sees them. Each op is one stored message.
func BenchmarkSend(b *testing.B) {
	engines := map[string]func(b *testing.B) store.Store{
		"sqlite": func(b *testing.B) store.Store {
			st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatal(err)
			}
			return st
		},
		"mongo": func(b *testing.B) store.Store {
			st, err := mongostore.Open(context.Background(), testenv.MongoURI(b), testenv.MongoDatabase(b))
			if err != nil {
				b.Fatal(err)
			}
			return st
		},
	}
	for _, name := range []string{"sqlite", "mongo"} {
		for _, senders := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/parallelism=%d", name, senders), func(b *testing.B) {
				st := engines[name](b)
				defer st.Close()
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				svc := chat.New(st, nopBroadcaster{}, chat.DefaultLimits, slog.New(slog.DiscardHandler))
				done := make(chan struct{})
				go func() { svc.Run(ctx); close(done) }()
				defer func() { cancel(); <-done }()

				users := make([]string, 8)
				for i := range users {
					u := &store.User{ID: store.NewID(), Username: fmt.Sprintf("bench%d_%s", i, store.NewID()[18:]), PasswordHash: "x", CreatedAt: time.Now()}
					u.Email = u.Username + "@example.com"
					if err := st.CreateUser(ctx, u); err != nil {
						b.Fatal(err)
					}
					users[i] = u.ID
				}
				name := "bench"
				chats := make([]string, 4)
				for i := range chats {
					c, err := svc.CreateGroup(ctx, users[0], &name, users[1:])
					if err != nil {
						b.Fatal(err)
					}
					chats[i] = c.Chat.ID
				}
				text := "a message of ordinary length, about as long as people type"
				var n atomic.Int64
				b.SetParallelism(senders)
				b.ResetTimer()
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := n.Add(1)
						_, err := svc.Send(ctx, users[i%int64(len(users))], "", chat.SendInput{ChatID: chats[i%int64(len(chats))], Text: &text})
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "sends/s")
			})
		}
	}
}
