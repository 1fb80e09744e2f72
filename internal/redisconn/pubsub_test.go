package redisconn_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parley-chat/parley/internal/redisconn"
	"github.com/parley-chat/parley/internal/testenv"
)

// Listen hands over messages, and reports each time every subscription is
// confirmed again (a restart, or Redis first answering), after which
// messages flow again.
func TestListen(t *testing.T) {
	for _, tt := range testenv.RedisOutages {
		t.Run(tt.Name, func(t *testing.T) {
			r := tt.Start(t)
			rdb := testenv.RedisClient(t, r.URL)
			ps := rdb.Subscribe(context.Background(), "a", "b")
			msgs, subscribed := make(chan string, 8), make(chan struct{}, 8)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			done, err := redisconn.Listen(ctx, ps, 2,
				func(m *redis.Message) { msgs <- m.Channel + ":" + m.Payload },
				func() { subscribed <- struct{}{} })
			if (err != nil) != tt.DownAtStart {
				t.Fatalf("Listen: %v", err)
			}
			t.Cleanup(func() { _ = ps.Close(); <-done })

			r.Restart(t)
			testenv.Receive(t, subscribed, "subscription confirmed")
			for _, ch := range []string{"a", "b"} {
				if err := rdb.Publish(context.Background(), ch, "x").Err(); err != nil {
					t.Fatal(err)
				}
				if got := testenv.Receive(t, msgs, "message"); got != ch+":x" {
					t.Fatalf("got %q", got)
				}
			}
		})
	}
}
