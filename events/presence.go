package events

import (
	"context"
	"sync"
	"time"

	"github.com/parley-chat/parley/internal/wire"
)

// Tracker counts each user's live connections; a user is online while the
// count is above zero. The in-memory one serves a single node. A cluster
// needs one shared through Redis (say a set per user of connection keys,
// each node refreshing its own keys so a dead node's expire), and keeps
// Online answerable from local memory, since REST asks it for every user
// it renders.
type Tracker interface {
	// Connect records connKey for userID; first is true when the user had
	// no connection before it.
	Connect(ctx context.Context, userID, connKey string) (first bool, err error)
	// Disconnect forgets connKey; last is true when it was the user's last
	// connection. Forgetting an unknown key is not an error and not last.
	Disconnect(ctx context.Context, userID, connKey string) (last bool, err error)
	Online(userID string) bool
}

// MemoryTracker is the single-node Tracker.
type MemoryTracker struct {
	mu    sync.RWMutex
	conns map[string]map[string]struct{}
}

// NewMemoryTracker returns an empty tracker.
func NewMemoryTracker() *MemoryTracker {
	return &MemoryTracker{conns: map[string]map[string]struct{}{}}
}

func (t *MemoryTracker) Connect(_ context.Context, userID, connKey string) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	set := t.conns[userID]
	if set == nil {
		set = map[string]struct{}{}
		t.conns[userID] = set
	}
	if _, ok := set[connKey]; ok {
		return false, nil
	}
	set[connKey] = struct{}{}
	return len(set) == 1, nil
}

func (t *MemoryTracker) Disconnect(_ context.Context, userID, connKey string) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	set := t.conns[userID]
	if _, ok := set[connKey]; !ok {
		return false, nil
	}
	delete(set, connKey)
	if len(set) == 0 {
		delete(t.conns, userID)
		return true, nil
	}
	return false, nil
}

func (t *MemoryTracker) Online(userID string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.conns[userID]) > 0
}

func (s *Server) userLock(userID string) *sync.Mutex { return s.userLocks.For(userID) }

// presenceTimeout bounds a presence transition's store and peer lookups.
const presenceTimeout = 5 * time.Second

// userConnected records a connection and announces the user's first one;
// seen, when not nil, is the socket's room lookup, whose peers it reuses.
func (s *Server) userConnected(userID, connKey string, seen *roomLookup) {
	ctx, cancel := context.WithTimeout(s.ctx, presenceTimeout)
	defer cancel()
	mu := s.userLock(userID)
	mu.Lock()
	defer mu.Unlock()
	first, err := s.tracker.Connect(ctx, userID, connKey)
	if err != nil {
		s.log.Warn("presence: record connection", "user", userID, "err", err)
		return
	}
	if !first {
		return
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	// Stored on connect too, so lastSeenAt stays a lower bound even if the
	// node dies before the disconnect is seen.
	if err := s.users.SetLastSeen(ctx, userID, now); err != nil {
		s.log.Warn("presence: store lastSeenAt", "user", userID, "err", err)
	}
	s.announce(ctx, userID, true, now, seen)
}

// userDisconnected forgets a connection and announces the user's last one.
func (s *Server) userDisconnected(userID, connKey string) {
	// Not derived from s.ctx: a shutdown's disconnects still owe the store
	// their lastSeenAt.
	ctx, cancel := context.WithTimeout(context.Background(), presenceTimeout)
	defer cancel()
	mu := s.userLock(userID)
	mu.Lock()
	defer mu.Unlock()
	last, err := s.tracker.Disconnect(ctx, userID, connKey)
	if err != nil {
		s.log.Warn("presence: forget connection", "user", userID, "err", err)
		return
	}
	if !last {
		return
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	if err := s.users.SetLastSeen(ctx, userID, now); err != nil {
		s.log.Warn("presence: store lastSeenAt", "user", userID, "err", err)
	}
	s.announce(ctx, userID, false, now, nil)
}

// announce tells everyone who shares a chat with the user. The peers a
// room lookup saw (seen, may be nil) stand while no room change ran since
// it, as the lookup was made during this same connect; otherwise they are
// read afresh.
func (s *Server) announce(ctx context.Context, userID string, online bool, at time.Time, seen *roomLookup) {
	var peers []string
	if seen != nil && s.membershipGen.Load() == seen.gen {
		peers = seen.peers
	} else {
		var err error
		if peers, err = s.chats.Peers(ctx, userID); err != nil {
			s.log.Warn("presence: look up peers", "user", userID, "err", err)
			return
		}
	}
	if len(peers) == 0 {
		return
	}
	s.out.emit(userRooms(peers), nil, EventPresence, wire.Presence{UserID: userID, Online: online, LastSeenAt: wire.Time{Time: at}})
}
