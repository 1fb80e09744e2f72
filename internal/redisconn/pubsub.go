package redisconn

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Listen serves a subscription until ps is closed: it waits (within ctx) for
// Redis to confirm the n channels and patterns ps was opened with, then hands
// every message to onMessage, one at a time, and calls onSubscribed each time
// all n are confirmed again: after go-redis re-subscribed on a new link (the
// old one dropped, Redis restarted), or, when Redis did not answer in time,
// once it first does. Messages published while no link was up are lost, so
// onSubscribed is where a listener reloads what it caches.
//
// The returned channel closes when ps is closed and the last message was
// handled. A non-nil error means the confirmation did not come within ctx;
// the listener runs all the same.
func Listen(ctx context.Context, ps *redis.PubSub, n int, onMessage func(*redis.Message), onSubscribed func()) (<-chan struct{}, error) {
	confirmed := 0
	var err error
	for confirmed < n {
		var msg any
		if msg, err = ps.Receive(ctx); err != nil {
			err = fmt.Errorf("redis subscribe (retrying in the background): %w", err)
			break
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			confirmed++
		case *redis.Message: // a message may come before the last confirmation
			onMessage(m)
		}
	}
	done := make(chan struct{})
	ch := ps.ChannelWithSubscriptions(redis.WithChannelSize(1024))
	go func() {
		defer close(done)
		again := confirmed % n
		for m := range ch {
			switch m := m.(type) {
			case *redis.Subscription:
				if m.Kind != "subscribe" && m.Kind != "psubscribe" {
					continue
				}
				if again++; again == n {
					again = 0
					onSubscribed()
				}
			case *redis.Message:
				onMessage(m)
			}
		}
	}()
	return done, err
}
