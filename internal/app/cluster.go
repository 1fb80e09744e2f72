package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/engine/sio"
	"github.com/parley-chat/parley/engine/sio/redisadapter"
	"github.com/parley-chat/parley/events"
	"github.com/parley-chat/parley/internal/clusterbus"
	"github.com/parley-chat/parley/session"
)

// cluster makes this node one of several on one Redis: the Socket.IO Redis
// adapter, presence counted across nodes, and notices for what each node
// caches. Each piece joins Redis by itself, at start-up or later.
type cluster struct {
	tracker *events.RedisTracker
	adapter func(*sio.Namespace) sio.Adapter
	bus     *clusterbus.Bus
	// sockets is set once the events server exists; the pieces built
	// before it call back into it through here.
	sockets atomic.Pointer[events.Server]
	seqs    *seqNotices
	log     *slog.Logger
}

// newCluster builds the pieces and hooks the chat service's and the session
// manager's changes to the bus; start runs them once the events server is
// built.
func newCluster(rdb *redis.Client, nodeID string, chats *chat.Service, sessions *session.Manager, log *slog.Logger) *cluster {
	if nodeID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		nodeID = hex.EncodeToString(b[:])
	}
	log = log.With("node", nodeID)
	cl := &cluster{log: log, seqs: newSeqNotices()}
	cl.tracker = events.NewRedisTracker(rdb, events.RedisTrackerOptions{NodeID: nodeID, Logger: log,
		OnChange: func(userID string, online bool) {
			if s := cl.sockets.Load(); s != nil {
				s.PresenceChanged(userID, online)
			}
		}})
	cl.adapter = redisadapter.Factory(rdb, redisadapter.Options{Logger: log,
		RoomChange: func(apply func()) {
			if s := cl.sockets.Load(); s != nil {
				s.RoomChange(apply)
				return
			}
			apply()
		},
		// Broadcasts published while the link was down are lost; a
		// client catches up with chat:history after its last seq.
	})
	cl.bus = clusterbus.New(rdb, clusterbus.Options{NodeID: nodeID, Logger: log, OnReconnect: chats.ForgetAll})
	clusterbus.Handle(cl.bus, clusterbus.TopicMembership, func(m clusterbus.MembershipChange) { chats.Forget(m.ChatID) })
	clusterbus.Handle(cl.bus, clusterbus.TopicSessionsRevoked, func(r clusterbus.SessionsRevoked) {
		if s := cl.sockets.Load(); s != nil {
			s.SessionsEnded(r.UserID, r.SessionIDs)
		}
	})
	clusterbus.Handle(cl.bus, clusterbus.TopicChatSeq, func(n clusterbus.ChatSeqs) { chats.Numbered(n.Last) })
	// A lost seq notice costs a clash that renumbers, so a reconnect
	// leaves the counters alone.
	chats.OnNumbered(cl.seqs.add)
	chats.OnChange(func(chatID string) {
		cl.publish(clusterbus.TopicMembership, clusterbus.MembershipChange{ChatID: chatID})
	})
	sessions.OnEnd(func(userID string, sids []string) {
		cl.publish(clusterbus.TopicSessionsRevoked, clusterbus.SessionsRevoked{UserID: userID, SessionIDs: sids})
	})
	return cl
}

// publishTimeout bounds one notice; it runs inside the request that made
// the change.
const publishTimeout = 2 * time.Second

func (cl *cluster) publish(topic string, v any) {
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	if err := cl.bus.Publish(ctx, topic, v); err != nil {
		cl.log.Warn("cluster notice not sent", "topic", topic, "err", err)
	}
}

// start runs the bus and the tracker. Redis being down is not fatal: each
// joins once Redis answers.
func (cl *cluster) start(sockets *events.Server) {
	cl.sockets.Store(sockets)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cl.bus.Start(ctx); err != nil {
		cl.log.Warn("cluster notices wait for redis", "err", err)
	}
	if err := cl.tracker.Start(ctx); err != nil {
		cl.log.Warn("presence across nodes waits for redis", "err", err)
	}
	cl.seqs.start(func(last map[string]int64) {
		cl.publish(clusterbus.TopicChatSeq, clusterbus.ChatSeqs{Last: last})
	})
}

// close says goodbye: this node's remaining connections stop counting at
// once (the sockets are closed first, so normally none remain).
func (cl *cluster) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cl.tracker.Close(ctx); err != nil {
		cl.log.Warn("presence goodbye", "err", err)
	}
	cl.seqs.stop()
	_ = cl.bus.Close()
}

// seqNotices carries the chat writer's "stored up to" to the bus off the
// writer's goroutine, which every send waits behind: add hands a commit's
// seqs over and returns; one goroutine publishes them. Commits made while a
// publish is in flight (or Redis is down) merge into the next notice, so
// the backlog is one map, never a queue of notices.
type seqNotices struct {
	mu      sync.Mutex
	pending map[string]int64
	wake    chan struct{}
	quit    chan struct{}
	done    chan struct{}
}

func newSeqNotices() *seqNotices {
	return &seqNotices{wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
}

// add takes one commit's last seq per chat; it never blocks.
func (n *seqNotices) add(last map[string]int64) {
	n.mu.Lock()
	if n.pending == nil {
		n.pending = last
	} else {
		for chatID, seq := range last {
			if seq > n.pending[chatID] {
				n.pending[chatID] = seq
			}
		}
	}
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default: // a publish is already due and takes these too
	}
}

// start publishes what add collected until stop.
func (n *seqNotices) start(publish func(last map[string]int64)) {
	go func() {
		defer close(n.done)
		for {
			select {
			case <-n.quit:
				return
			case <-n.wake:
			}
			n.mu.Lock()
			last := n.pending
			n.pending = nil
			n.mu.Unlock()
			if len(last) > 0 {
				publish(last)
			}
		}
	}()
}

// stop ends the publishing goroutine; the chat writer has stopped by then
// (App.Close), and what it stored last is in the store for LastSeq.
func (n *seqNotices) stop() {
	close(n.quit)
	<-n.done
}
