// Package clusterbus carries small notices between Parley nodes over Redis
// pub/sub, for what each node keeps in memory: "chat X's members changed,
// drop your copy", "these sessions ended, refuse them and drop their
// sockets", "chat X is numbered up to seq N, number after it". Pub/sub delivers at most once and only to nodes connected at
// that moment, so every receiver must tolerate a lost notice: OnReconnect
// tells it when notices may have been lost (the Redis link dropped and came
// back), and it then drops everything it caches.
package clusterbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/parley-chat/parley/internal/redisconn"
)

// Topics Parley uses; each is the channel Prefix+topic.
const (
	// TopicMembership: a chat's member list changed (MembershipChange).
	TopicMembership = "membership"
	// TopicSessionsRevoked: sessions ended (SessionsRevoked).
	TopicSessionsRevoked = "sessions-revoked"
	// TopicChatSeq: a node stored messages up to these seqs (ChatSeqs).
	TopicChatSeq = "chat-seq"
)

// MembershipChange is the notice of TopicMembership.
type MembershipChange struct {
	ChatID string `json:"chatId"`
}

// SessionsRevoked is the notice of TopicSessionsRevoked.
type SessionsRevoked struct {
	UserID     string   `json:"userId"`
	SessionIDs []string `json:"sessionIds"`
}

// ChatSeqs is the notice of TopicChatSeq: the last seq one group commit
// stored in each chat it wrote (chat id -> seq), so the other nodes number
// their next message in that chat after it.
type ChatSeqs struct {
	Last map[string]int64 `json:"last"`
}

// Options configure a Bus.
type Options struct {
	// Prefix of every channel; default "parley:bus:".
	Prefix string
	// NodeID names this node; its own notices are not delivered back to
	// it. Default a random id.
	NodeID string
	// OnReconnect runs after the link to Redis came back (or first came up,
	// Redis being down at Start) and every topic is subscribed again:
	// notices published meanwhile are lost.
	OnReconnect func()
	Logger      *slog.Logger
}

// Bus is one node's end of the notices.
type Bus struct {
	rdb  *redis.Client
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	handlers map[string][]func(json.RawMessage)
	ps       *redis.PubSub
	done     <-chan struct{}
}

// envelope is a notice on the wire: JSON {from, data}.
type envelope struct {
	From string          `json:"from"`
	Data json.RawMessage `json:"data"`
}

// New returns a bus; register handlers with Handle, then Start.
func New(rdb *redis.Client, opts Options) *Bus {
	if opts.Prefix == "" {
		opts.Prefix = "parley:bus:"
	}
	if opts.NodeID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		opts.NodeID = hex.EncodeToString(b[:])
	}
	if opts.OnReconnect == nil {
		opts.OnReconnect = func() {}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Bus{rdb: rdb, opts: opts, log: opts.Logger.With("component", "clusterbus"),
		handlers: map[string][]func(json.RawMessage){}}
}

// Handle registers h for a topic's notices from other nodes, decoded into
// T; call it before Start. Handlers run one at a time, in arrival order.
func Handle[T any](b *Bus, topic string, h func(T)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.handlers[topic] = append(b.handlers[topic], func(raw json.RawMessage) {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			b.log.Warn("ignore malformed notice", "topic", topic, "err", err)
			return
		}
		h(v)
	})
}

// Start subscribes to every handled topic and returns once Redis confirmed
// it, so a notice published afterwards is received. An error means Redis did
// not confirm in time; the bus still runs and subscribes as soon as Redis
// answers (OnReconnect then runs).
func (b *Bus) Start(ctx context.Context) error {
	b.mu.Lock()
	channels := make([]string, 0, len(b.handlers))
	for topic := range b.handlers {
		channels = append(channels, b.opts.Prefix+topic)
	}
	b.mu.Unlock()
	if len(channels) == 0 {
		return errors.New("clusterbus: no topic handled")
	}
	b.ps = b.rdb.Subscribe(ctx, channels...)
	done, err := redisconn.Listen(ctx, b.ps, len(channels), b.deliver, func() {
		b.log.Info("subscribed to redis; notices may have been lost")
		b.opts.OnReconnect()
	})
	b.done = done
	if err != nil {
		return fmt.Errorf("clusterbus: %w", err)
	}
	return nil
}

func (b *Bus) deliver(m *redis.Message) {
	var env envelope
	if err := json.Unmarshal([]byte(m.Payload), &env); err != nil {
		b.log.Warn("ignore malformed notice", "channel", m.Channel, "err", err)
		return
	}
	if env.From == b.opts.NodeID {
		return
	}
	topic := m.Channel[len(b.opts.Prefix):]
	b.mu.Lock()
	hs := b.handlers[topic]
	b.mu.Unlock()
	for _, h := range hs {
		h(env.Data)
	}
}

// Publish sends a notice to every other node. An error means Redis did not
// take it; the caller has already applied it locally and logs the error.
func (b *Bus) Publish(ctx context.Context, topic string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("clusterbus: %w", err)
	}
	msg, err := json.Marshal(envelope{From: b.opts.NodeID, Data: data})
	if err != nil {
		return fmt.Errorf("clusterbus: %w", err)
	}
	if err := b.rdb.Publish(ctx, b.opts.Prefix+topic, msg).Err(); err != nil {
		return fmt.Errorf("clusterbus: publish %s: %w", topic, err)
	}
	return nil
}

// Close unsubscribes and waits for the handlers to finish.
func (b *Bus) Close() error {
	if b.ps == nil {
		return nil
	}
	err := b.ps.Close()
	<-b.done
	return err
}
