// Package events is Parley's Socket.IO layer: the handshake, the client
// events, presence and session revocation, and the chat.Broadcaster that
// the chat service delivers through.
//
// Only engine.go knows the Socket.IO engine (engine/sio). Everything else is written
// against Conn (one socket) and fanout (rooms), so the handlers are tested
// without a network and the engine can be swapped.
package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-chat/parley/auth"
	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/engine/sio"
	"github.com/parley-chat/parley/internal/clientaddr"
	"github.com/parley-chat/parley/internal/ratelimit"
	"github.com/parley-chat/parley/internal/striped"
	"github.com/parley-chat/parley/session"
	"github.com/parley-chat/parley/store"
)

// Accounts verifies credentials; *auth.Accounts implements it.
type Accounts interface {
	Authenticate(ctx context.Context, token string) (auth.Identity, error)
}

// Chats is the part of *chat.Service the socket events call.
type Chats interface {
	Send(ctx context.Context, userID, origin string, in chat.SendInput) (chat.Sent, error)
	History(ctx context.Context, userID, chatID string, q chat.HistoryQuery) (msgs []store.Message, hasMore bool, err error)
	MarkRead(ctx context.Context, userID, origin, chatID string, seq int64) error
	Typing(ctx context.Context, userID, origin, chatID string, isTyping bool) error
	// Member answers not_found unless userID belongs to chatID.
	Member(ctx context.Context, userID, chatID string) error
	// Membership reads the user's chats and peers at once, for a
	// connecting socket's rooms and presence announcement.
	Membership(ctx context.Context, userID string) (chat.Membership, error)
	// Peers lists the users who share a chat with userID, without userID.
	Peers(ctx context.Context, userID string) ([]string, error)
}

// Users is the part of the store presence needs.
type Users interface {
	UsersByIDs(ctx context.Context, ids []string) ([]store.User, error)
	SetLastSeen(ctx context.Context, id string, at time.Time) error
}

// SessionEvents tells of ended sessions; *session.Manager implements it.
type SessionEvents interface {
	OnEnd(fn session.EndFunc)
}

// Config is the socket server's settings; zero values take the defaults.
type Config struct {
	// CORSOrigins: empty allows any origin without credentials; otherwise
	// exactly these origins, with credentials (the same rule as REST).
	CORSOrigins []string
	// PingInterval and PingTimeout default to Socket.IO's 25s and 20s.
	PingInterval time.Duration
	PingTimeout  time.Duration
	// MaxHTTPBufferSize is the largest packet accepted, default 1 MB.
	MaxHTTPBufferSize int64
	// RecoveryWindow turns Socket.IO's connection-state recovery on: how
	// long after a drop a 4.x client gets its socket back with the events
	// it missed. Zero or negative (the default) is off; then every event
	// carries exactly its payload, which one-argument handlers need.
	RecoveryWindow time.Duration
	// SocketQueueBytes bounds what may wait to be written to one socket;
	// a socket past it is closed (a client that stopped reading), and
	// nobody else slows down. Zero takes the engine's default.
	SocketQueueBytes int
	// HandlerTimeout bounds one event's work; default 15s.
	HandlerTimeout time.Duration
	// SetupTimeout is how long a socket admitted without credentials may
	// wait before its MERN `setup` event; default 5s.
	SetupTimeout time.Duration
	// Limits are the flood limits; the zero value limits nothing.
	Limits Limits
}

// Limits bound what one user, socket or address may do. Rates are taken
// from Deps.Limiter (shared through Redis when configured); open sockets
// are counted on this node.
type Limits struct {
	// Send: message:send per user. Typing: typing changes per socket.
	Send, Typing ratelimit.Limit
	// Handshakes: new socket handshakes per client address.
	Handshakes ratelimit.Limit
	// SocketsPerUser and SocketsPerAddress bound open sockets; 0: none.
	SocketsPerUser, SocketsPerAddress int
}

func (c *Config) defaults() {
	if c.PingInterval == 0 {
		c.PingInterval = 25 * time.Second
	}
	if c.PingTimeout == 0 {
		c.PingTimeout = 20 * time.Second
	}
	if c.MaxHTTPBufferSize == 0 {
		c.MaxHTTPBufferSize = 1e6
	}
	if c.RecoveryWindow < 0 {
		c.RecoveryWindow = 0
	}
	if c.HandlerTimeout == 0 {
		c.HandlerTimeout = 15 * time.Second
	}
	if c.SetupTimeout == 0 {
		c.SetupTimeout = 5 * time.Second
	}
}

// Deps is what the socket server works with.
type Deps struct {
	Log      *slog.Logger
	Accounts Accounts
	Chats    Chats
	Users    Users
	// Sessions, when set, has revoked sessions' sockets disconnected.
	Sessions SessionEvents
	// Tracker counts sockets per user; nil means this node only (NewMemoryTracker).
	Tracker Tracker
	// Registerer, when set, gets the socket metrics.
	Registerer prometheus.Registerer
	// Adapter builds the namespace's Socket.IO adapter: a cluster's Redis
	// adapter; nil means this node only.
	Adapter func(*sio.Namespace) sio.Adapter
	// Now is the clock, for tests; nil means time.Now.
	Now func() time.Time
	// Limiter holds the rate budgets; nil means one on this node.
	Limiter ratelimit.Limiter
	// Addrs finds a handshake's client address; nil means the peer.
	Addrs *clientaddr.Resolver
	// MERN renders messages for the MERN app's sockets (see mern.go); nil
	// leaves them without `message recieved`.
	MERN MERNRenderer
}

// fanout is what the server needs from the transport, in Parley's terms:
// rooms are strings and a target list names rooms, never sockets.
type fanout interface {
	// emit sends to every socket in any of to, except those in any of except.
	emit(to, except []string, event string, payload any)
	// join makes every socket in any of in join rooms; leave, leave them.
	join(in []string, rooms ...string)
	leave(in []string, rooms ...string)
	// disconnect ends every socket in any of in, server side.
	disconnect(in ...string)
}

// Server is the Socket.IO endpoint. It implements chat.Broadcaster, and
// web.Presence through Online.
type Server struct {
	cfg      Config
	log      *slog.Logger
	accounts Accounts
	chats    Chats
	users    Users
	tracker  Tracker
	adapter  func(*sio.Namespace) sio.Adapter
	metrics  *metrics
	now      func() time.Time
	limiter  ratelimit.Limiter
	addrs    *clientaddr.Resolver
	// slots counts open sockets per user and per address (see Limits).
	slots *ratelimit.Slots
	// socketLimiter holds per-socket budgets, which never leave the node.
	socketLimiter *ratelimit.Memory

	out     fanout
	eng     *engine // nil in tests that run without the engine
	handler http.Handler

	// ctx ends when Close gives up waiting; handlers derive from it.
	ctx    context.Context
	cancel context.CancelFunc
	work   inflight
	closed atomic.Bool
	once   sync.Once

	// membership orders room changes against a connecting socket's join
	// of its chats: without it, a member removed between the socket's
	// membership lookup and its joins would be put back into the chat's room.
	membership sync.RWMutex
	// membershipGen counts JoinChat and LeaveChat calls (bumped under
	// membership's write lock). A socket is invisible to them between its
	// room lookup and its connect; a changed count tells it to look again,
	// and its presence announcement to look its peers up afresh.
	membershipGen atomic.Uint64
	// userLocks serialise each user's presence transitions, so "online"
	// and "offline" for one user are announced in the order they happened.
	userLocks *striped.Locks
	connSeq   atomic.Uint64

	// revoked remembers recently ended sessions: for a socket that passed
	// the handshake just before its session ended but had not yet joined
	// its session room when the revocation went out, and for a dropped
	// socket of that session trying to recover its state.
	revokedMu sync.Mutex
	revoked   map[string]time.Time

	expiryMu sync.Mutex
	expiries map[string]*sessionExpiry // by session id; see watchExpiry
	mern     mernServer                // the MERN dialect's deliveries (mern.go)
}

var _ chat.Broadcaster = (*Server)(nil)

// Event names the server emits besides chat's.
const (
	EventPresence       = "presence"
	EventSessionRevoked = "session:revoked"
)

// New builds the Socket.IO server. Mount Handler at /socket.io/.
func New(cfg Config, deps Deps) (*Server, error) {
	s, err := newServer(cfg, deps)
	if err != nil {
		return nil, err
	}
	eng, err := newEngine(s, deps.Registerer)
	if err != nil {
		return nil, fmt.Errorf("socket.io engine: %w", err)
	}
	s.eng, s.out = eng, eng
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.closed.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		eng.ServeHTTP(w, r)
	})
	if deps.Sessions != nil {
		deps.Sessions.OnEnd(s.revoke)
	}
	return s, nil
}

// newServer builds everything but the engine, for New and for tests.
func newServer(cfg Config, deps Deps) (*Server, error) {
	if deps.Accounts == nil || deps.Chats == nil || deps.Users == nil {
		return nil, errors.New("events: Accounts, Chats and Users are required")
	}
	cfg.defaults()
	s := &Server{
		cfg: cfg, log: deps.Log, accounts: deps.Accounts, chats: deps.Chats, users: deps.Users,
		tracker: deps.Tracker, adapter: deps.Adapter, now: deps.Now, revoked: map[string]time.Time{}, userLocks: striped.New(64),
		expiries: map[string]*sessionExpiry{},
		limiter:  deps.Limiter, addrs: deps.Addrs, slots: ratelimit.NewSlots(),
	}
	s.mern.init(deps.MERN, &s.work)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.tracker == nil {
		s.tracker = NewMemoryTracker()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.limiter == nil {
		s.limiter = ratelimit.NewMemory(s.now)
	}
	s.socketLimiter = ratelimit.NewMemory(s.now)
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Handler serves Engine.IO polling and the websocket upgrade. Mount it on
// the REST router: r.Handle("/socket.io/*", srv.Handler()).
func (s *Server) Handler() http.Handler { return s.handler }

// shutdownWait bounds how long Close waits for events in progress (a send
// being stored, a presence write) before cancelling them.
const shutdownWait = 10 * time.Second

// Close is Shutdown with shutdownWait.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownWait)
	defer cancel()
	s.Shutdown(ctx)
}

// Shutdown stops taking new work (new handshakes are refused, new events
// answered unavailable), lets the events already accepted finish and ack
// over the still-open sockets, then closes every socket and waits for their
// teardown (presence, lastSeenAt). It returns as soon as that is done, or
// cancels what is left when ctx ends. Call it before the HTTP server's
// Shutdown completes (long-polling requests are open handlers it would
// wait on) and before the store and the chat writer stop.
func (s *Server) Shutdown(ctx context.Context) {
	s.once.Do(func() {
		s.closed.Store(true)
		s.expiryMu.Lock()
		for sid, e := range s.expiries {
			e.timer.Stop()
			delete(s.expiries, sid)
		}
		s.expiryMu.Unlock()
		if err := s.work.wait(ctx); err != nil {
			s.log.Warn("socket events still running at shutdown; closing the sockets anyway")
		}
		if s.eng != nil {
			s.eng.close()
		}
		if err := s.work.wait(ctx); err != nil {
			s.log.Warn("socket events still running at shutdown; cancelling them")
		}
		s.cancel()
	})
}

// ToChat emits to every socket in the chat's room except origin's.
func (s *Server) ToChat(chatID, event string, payload any, origin string) {
	var except []string
	if origin != "" {
		// Every socket sits alone in a room named by its id.
		except = []string{origin}
	}
	s.out.emit([]string{chatRoom(chatID)}, except, event, payload)
	s.mernToChat(chatID, event, payload)
}

// ToUsers emits to every socket of each user.
func (s *Server) ToUsers(userIDs []string, event string, payload any) {
	if len(userIDs) == 0 {
		return
	}
	s.out.emit(userRooms(userIDs), nil, event, payload)
	s.mernToUsers(event, payload)
}

// JoinChat makes every live socket of the users join the chat's room.
func (s *Server) JoinChat(userIDs []string, chatID string) {
	if len(userIDs) == 0 {
		return
	}
	s.membership.Lock()
	defer s.membership.Unlock()
	s.membershipGen.Add(1)
	s.out.join(userRooms(userIDs), chatRoom(chatID))
}

// LeaveChat makes every live socket of the users leave the chat's room.
func (s *Server) LeaveChat(userIDs []string, chatID string) {
	if len(userIDs) == 0 {
		return
	}
	s.membership.Lock()
	defer s.membership.Unlock()
	s.membershipGen.Add(1)
	s.out.leave(userRooms(userIDs), chatRoom(chatID))
	s.out.leave(mernUserRooms(userIDs), mernChatRoom(chatID))
}

func userRooms(userIDs []string) []string {
	rooms := make([]string, len(userIDs))
	for i, id := range userIDs {
		rooms[i] = userRoom(id)
	}
	return rooms
}

// Online tells whether the user has a live socket.
func (s *Server) Online(userID string) bool { return s.tracker.Online(userID) }

// revokedMemory is how long an ended session is remembered: longer than
// any handshake takes, and longer than a dropped socket's state is kept
// for recovery.
func (s *Server) revokedMemory() time.Duration {
	return max(time.Minute, s.cfg.RecoveryWindow+time.Minute)
}

// revoke tells the sockets of ended sessions and disconnects them. It runs
// inside the request that ended them, so it only touches memory.
func (s *Server) revoke(_ string, sids []string) {
	s.rememberRevoked(sids)
	for _, sid := range sids {
		room := sessionRoom(sid)
		s.out.emit([]string{room}, nil, EventSessionRevoked, struct{}{})
		s.out.disconnect(room)
	}
}

// rememberRevoked notes ended sessions, so a socket of one still
// mid-handshake is refused, and forgets those older than revokedMemory.
func (s *Server) rememberRevoked(sids []string) {
	now := s.now()
	keep := s.revokedMemory()
	s.revokedMu.Lock()
	defer s.revokedMu.Unlock()
	for sid, at := range s.revoked {
		if now.Sub(at) > keep {
			delete(s.revoked, sid)
		}
	}
	for _, sid := range sids {
		s.revoked[sid] = now
	}
}

func (s *Server) wasRevoked(sid string) bool {
	s.revokedMu.Lock()
	defer s.revokedMu.Unlock()
	_, ok := s.revoked[sid]
	return ok
}
