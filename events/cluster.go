package events

import (
	"context"
	"time"
)

// What a cluster's pieces (engine/sio/redisadapter, RedisTracker,
// internal/clusterbus) call back into the server with; main wires them.

// RoomChange runs apply, another node's join or leave of this node's
// sockets, under the membership lock, as JoinChat runs its own: a socket
// between its room lookup and its connect then looks again.
func (s *Server) RoomChange(apply func()) {
	s.membership.Lock()
	defer s.membership.Unlock()
	s.membershipGen.Add(1)
	apply()
}

// PresenceChanged announces a transition the tracker found outside this
// node's own connects and disconnects (another node reaped, or this one
// back after being reaped).
func (s *Server) PresenceChanged(userID string, online bool) {
	ctx, cancel := context.WithTimeout(context.Background(), presenceTimeout)
	defer cancel()
	mu := s.userLock(userID)
	mu.Lock()
	defer mu.Unlock()
	now := s.now().UTC().Truncate(time.Millisecond)
	// Both ways, as userConnected and userDisconnected do.
	if err := s.users.SetLastSeen(ctx, userID, now); err != nil {
		s.log.Warn("presence: store lastSeenAt", "user", userID, "err", err)
	}
	s.announce(ctx, userID, online, now, nil)
}

// SessionsEnded remembers sessions another node ended: their sockets are
// told and disconnected by that node through the adapter, but a socket
// here still mid-handshake must be refused too.
func (s *Server) SessionsEnded(_ string, sids []string) { s.rememberRevoked(sids) }
