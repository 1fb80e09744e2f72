package events

import (
	"context"
	"fmt"
	"math"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/apperr"
	"github.com/parley-chat/parley/internal/ratelimit"
	"github.com/parley-chat/parley/internal/str"
	"github.com/parley-chat/parley/internal/wire"
	"github.com/parley-chat/parley/store"
)

// Client event names, as on the wire.
const (
	EventMessageSend = "message:send"
	EventMessageRead = chat.EventMessageRead
	EventTyping      = chat.EventTyping
	EventChatHistory = "chat:history"
	EventPresenceGet = "presence:get"
)

// clientEvents are the events a socket listens to; anything else is ignored.
var clientEvents = []string{EventMessageSend, EventMessageRead, EventTyping, EventChatHistory, EventPresenceGet}

// Typing relay budget per socket and chat.
const (
	typingRate  = 3 // a second
	typingBurst = 3
)

// laneLimit is how many events of one kind a socket may have waiting.
const laneLimit = 64

// maxPresenceIDs bounds one presence:get, as large as the largest group.
const maxPresenceIDs = 1000

// Lanes: one per kind of event, so a slow kind never holds up another.
const (
	laneSend = iota
	laneRead
	laneTyping
	laneQuery
	numLanes
)

// connState is one socket's life on this server.
type connState struct {
	s    *Server
	conn Conn
	key  string // unique per connection, for the Tracker: ids repeat on recovery
	// typing and lanes are made on first use: most sockets sit idle, and
	// many never type (see laneFor, typingThrottle).
	typing atomic.Pointer[typingThrottle]
	lanes  [numLanes]atomic.Pointer[lane]

	mu      sync.Mutex
	closed  bool
	tracked bool
	// bound: counted in the server's MERN sockets (mern.go); under mu
	// with closed, so a teardown racing a setup never leaves it counted.
	bound bool
	ended sync.Once

	mern mernConn // the MERN dialect's state (mern.go)
}

func (s *Server) newConn(c Conn) *connState {
	st := &connState{
		s: s, conn: c,
		key: c.ID() + "." + strconv.FormatUint(s.connSeq.Add(1), 36),
	}
	s.metrics.connected()
	return st
}

// roomLookup is what enterRooms saw: the membership generation (see
// JoinChat) and the user's peers, which the presence announcement reuses
// unless a room change ran since, so a connect reads the chats once.
type roomLookup struct {
	gen   uint64
	peers []string
}

// enterRooms puts a socket that passed the credential check in its rooms:
// user:<uid>, session:<sid> and chat:<cid> for each of its chats. The
// engine calls it before the client hears that it is connected, so that
// whatever reaches its chats after the client's "connect" reaches it. It
// returns what its lookup saw; an error means the rooms could not be
// known, and the socket must not go on.
func (s *Server) enterRooms(c Conn) (roomLookup, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.HandlerTimeout)
	defer cancel()
	uid := c.UserID()
	s.membership.RLock()
	defer s.membership.RUnlock()
	gen := s.membershipGen.Load()
	m, err := s.chats.Membership(ctx, uid)
	if err != nil {
		return roomLookup{}, fmt.Errorf("chats of %s: %w", uid, err)
	}
	want := map[string]bool{c.ID(): true, userRoom(uid): true, sessionRoom(c.SessionID()): true}
	rooms := []string{userRoom(uid), sessionRoom(c.SessionID())}
	for _, id := range m.ChatIDs {
		rooms = append(rooms, chatRoom(id))
		want[chatRoom(id)] = true
	}
	// A recovered socket comes back with its old rooms: chats it has left
	// meanwhile, even another user's rooms if the client signed in anew.
	for _, r := range c.Rooms() {
		if !want[r] {
			c.Leave(r)
		}
	}
	c.Join(rooms...)
	return roomLookup{gen: gen, peers: m.Peers}, nil
}

// setup counts a connected socket for presence, once the engine has made
// it visible to broadcasts; seen is what enterRooms returned for it.
func (st *connState) setup(seen roomLookup) {
	s, c := st.s, st.conn
	if s.membershipGen.Load() != seen.gen {
		// A JoinChat or LeaveChat ran between the room lookup and now,
		// while the socket was not yet visible to it. Now it is, so one
		// more lookup settles the rooms for good.
		var err error
		if seen, err = s.enterRooms(c); err != nil {
			s.log.Warn("socket: look up chats; dropping the connection", "user", c.UserID(), "err", err)
			c.Drop()
			return
		}
	}
	st.trackSeen(&seen)
}

// track counts the socket for presence, unless its session ended after the
// credential check, before the session room could hear of it.
func (st *connState) track() { st.trackSeen(nil) }

// trackSeen is track with the peers a room lookup saw, if any.
func (st *connState) trackSeen(seen *roomLookup) {
	s, c := st.s, st.conn
	if s.wasRevoked(c.SessionID()) {
		c.Emit(EventSessionRevoked, struct{}{})
		c.Disconnect()
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return
	}
	st.tracked = true
	s.userConnected(c.UserID(), st.key, seen)
}

// teardown runs once when the socket goes, whatever the reason. The
// engine may call it from a transport goroutine or from inside a
// revocation, so the slow part runs on its own.
func (st *connState) teardown() {
	st.ended.Do(func() {
		st.mern.stopTimer()
		st.s.work.begin()
		go func() {
			defer st.s.work.end()
			defer func() {
				if v := recover(); v != nil {
					st.s.log.Error("socket teardown panicked", "user", st.conn.UserID(), "panic", v, "stack", string(debug.Stack()))
				}
			}()
			st.s.metrics.disconnected()
			// Waits for setup to finish counting this socket, so it is
			// never forgotten before it was recorded.
			st.mu.Lock()
			defer st.mu.Unlock()
			st.closed = true
			if st.bound {
				st.s.mern.bound.Add(-1)
			}
			if st.tracked {
				st.s.userDisconnected(st.conn.UserID(), st.key)
			}
		}()
	})
}

// handle is the entry for one client event. payload is the event's first
// argument (nil when there was none); ack is nil when the client asked
// for no answer.
func (st *connState) handle(event string, payload any, ack Ack) {
	if st.s.closed.Load() {
		// Shutting down: what was accepted is finishing; nothing new starts.
		st.reply(event, ack, nil, errShuttingDown)
		return
	}
	if st.handleMERN(event, payload, ack) {
		return
	}
	switch event {
	case EventMessageSend:
		st.onSend(payload, ack)
	case EventMessageRead:
		st.onRead(payload, ack)
	case EventTyping:
		st.onTyping(payload, ack)
	case EventChatHistory:
		st.onHistory(payload, ack)
	case EventPresenceGet:
		st.onPresence(payload, ack)
	}
}

// errShuttingDown answers events that arrive once Shutdown has begun.
var errShuttingDown = apperr.New(apperr.Unavailable, "the server is shutting down, try again")

// Ack bodies.
type (
	okAck struct {
		OK bool `json:"ok"`
	}
	errAck struct {
		OK    bool     `json:"ok"`
		Error ackError `json:"error"`
	}
	// ackError is the contract's error, with retryAfterMs on rate_limited.
	ackError struct {
		apperr.BodyError
		RetryAfterMs *int64 `json:"retryAfterMs,omitempty"`
	}
	sendAck struct {
		OK      bool         `json:"ok"`
		Message wire.Message `json:"message"`
	}
	historyAck struct {
		OK bool `json:"ok"`
		wire.History
	}
	presenceAck struct {
		OK       bool            `json:"ok"`
		Presence []wire.Presence `json:"presence"`
	}
)

// reply answers an event: the result, or the error in the contract's
// shape. apperr.From is the one place errors become codes.
func (st *connState) reply(event string, ack Ack, result any, err error) {
	if err == nil {
		st.s.metrics.event(event, "ok")
		if ack != nil {
			ack(result)
		}
		return
	}
	e := apperr.From(err)
	st.s.metrics.event(event, string(e.Code))
	if e.Code == apperr.Internal || e.Code == apperr.Unavailable {
		st.s.log.Error("socket event failed", "event", event, "user", st.conn.UserID(), "err", err)
	}
	if ack != nil {
		body := ackError{BodyError: e.Body().Error}
		if e.Code == apperr.RateLimited {
			ms := max(e.RetryAfter.Milliseconds(), 1)
			body.RetryAfterMs = &ms
		}
		ack(errAck{OK: false, Error: body})
	}
}

// laneFor is the socket's lane of one kind, made on its first event.
func (st *connState) laneFor(id int) *lane {
	if l := st.lanes[id].Load(); l != nil {
		return l
	}
	st.lanes[id].CompareAndSwap(nil, newLane(laneLimit, &st.s.work))
	return st.lanes[id].Load()
}

// typingThrottle is the socket's typing budget, made on its first typing.
func (st *connState) typingThrottle() *typingThrottle {
	if t := st.typing.Load(); t != nil {
		return t
	}
	st.typing.CompareAndSwap(nil, newTypingThrottle(typingRate, typingBurst, st.s.now))
	return st.typing.Load()
}

// run does an event's work on its lane and answers it. A panic in the work
// answers internal and leaves the socket and the server standing.
func (st *connState) run(laneID int, event string, ack Ack, work func(ctx context.Context) (any, error)) {
	st.laneFor(laneID).push(func() {
		ctx, cancel := context.WithTimeout(st.s.ctx, st.s.cfg.HandlerTimeout)
		defer cancel()
		var (
			result any
			err    error
		)
		func() {
			defer func() {
				if v := recover(); v != nil {
					err = fmt.Errorf("panic in %s handler: %v\n%s", event, v, debug.Stack())
				}
			}()
			result, err = work(ctx)
		}()
		st.reply(event, ack, result, err)
	})
}

// on is the one parse → call → reply step of every client event. parse
// reads the payload's fields and returns the work to run with them; any
// refused field answers invalid_input at once, naming them all. A nil work
// answers ok without running anything.
func (st *connState) on(laneID int, event string, v any, ack Ack, parse func(p *payload) func(ctx context.Context) (any, error)) {
	p, err := parsePayload(v)
	if err != nil {
		st.reply(event, ack, nil, err)
		return
	}
	work := parse(p)
	if err := p.Err(); err != nil {
		st.reply(event, ack, nil, err)
		return
	}
	if work == nil {
		st.reply(event, ack, okAck{OK: true}, nil)
		return
	}
	st.run(laneID, event, ack, work)
}

// done answers ok when err is nil.
func done(err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return okAck{OK: true}, nil
}

// overLimit takes one unit of key's budget; over it, the event is answered
// rate_limited and goes no further (nothing stored, nothing relayed), and
// the socket stays up.
func (st *connState) overLimit(event, limit string, lim ratelimit.Limiter, key string, l ratelimit.Limit, ack Ack) bool {
	if err := st.take(st.s.ctx, event, limit, lim, key, l); err != nil {
		st.reply(event, ack, nil, err)
		return true
	}
	return false
}

// take takes one unit of key's budget, or says rate_limited. A limiter
// that fails lets the event through (logged): a Redis outage must not stop
// every chat.
func (st *connState) take(ctx context.Context, event, limit string, lim ratelimit.Limiter, key string, l ratelimit.Limit) error {
	res, err := lim.Allow(ctx, key, l)
	if err != nil {
		st.s.log.Warn("socket: rate limit unavailable", "event", event, "err", err)
		return nil
	}
	if res.Allowed {
		return nil
	}
	st.s.metrics.limited(limit)
	return rateLimited("too many "+limit+", slow down", res.RetryAfter)
}

func (st *connState) onSend(v any, ack Ack) {
	st.on(laneSend, EventMessageSend, v, ack, func(p *payload) func(ctx context.Context) (any, error) {
		in := chat.SendInput{
			ChatID:      str.Deref(p.String("chatId", true)),
			Text:        p.String("text", false),
			Attachments: p.Strings("attachments", false),
			ClientMsgID: p.String("clientMsgId", false),
		}
		return func(ctx context.Context) (any, error) {
			// The per-user budget is taken on the send lane, not the
			// socket's read path: a shared limiter is a Redis round trip,
			// and a slow Redis must not hold up the socket's other events.
			if err := st.take(ctx, EventMessageSend, "sends", st.s.limiter, "send:"+st.conn.UserID(), st.s.cfg.Limits.Send); err != nil {
				return nil, err
			}
			sent, err := st.s.chats.Send(ctx, st.conn.UserID(), st.conn.ID(), in)
			if err != nil {
				return nil, err
			}
			// The ack carries the value the broadcast carried.
			return sendAck{OK: true, Message: sent.Rendered}, nil
		}
	})
}

func (st *connState) onRead(v any, ack Ack) {
	st.on(laneRead, EventMessageRead, v, ack, func(p *payload) func(ctx context.Context) (any, error) {
		chatID, seq := p.String("chatId", true), p.Int64("seq", true)
		return func(ctx context.Context) (any, error) {
			return done(st.s.chats.MarkRead(ctx, st.conn.UserID(), st.conn.ID(), *chatID, *seq))
		}
	})
}

func (st *connState) onTyping(v any, ack Ack) {
	if st.overTypingLimit(ack) {
		return
	}
	st.on(laneTyping, EventTyping, v, ack, func(p *payload) func(ctx context.Context) (any, error) {
		chatID, isTyping := p.String("chatId", true), p.Bool("isTyping", true)
		if p.Err() != nil {
			return nil
		}
		return st.typingWork(*chatID, *isTyping, ack)
	})
}

// overTypingLimit takes one of the socket's typing changes; both dialects'
// typing events count against the one budget.
func (st *connState) overTypingLimit(ack Ack) bool {
	return st.overLimit(EventTyping, "typing", st.s.socketLimiter, "typing:"+st.key, st.s.cfg.Limits.Typing, ack)
}

// relayTyping is a MERN typing change (mern.go): a chat id, no payload.
func (st *connState) relayTyping(chatID string, isTyping bool, ack Ack) {
	if st.overTypingLimit(ack) {
		return
	}
	work := st.typingWork(chatID, isTyping, ack)
	if work == nil {
		st.reply(EventTyping, ack, okAck{OK: true}, nil)
		return
	}
	st.run(laneTyping, EventTyping, ack, work)
}

// typingWork relays a typing change within the socket's budget (the chat
// service sends it to both dialects); nil for a repeat over the budget
// that no one waits for.
func (st *connState) typingWork(chatID string, isTyping bool, ack Ack) func(ctx context.Context) (any, error) {
	relay := st.typingThrottle().allow(chatID, isTyping)
	if !relay && ack == nil {
		// A repeat over the budget: nothing anyone would miss, and no one
		// waits for an answer.
		return nil
	}
	return func(ctx context.Context) (any, error) {
		if relay {
			return done(st.s.chats.Typing(ctx, st.conn.UserID(), st.conn.ID(), chatID, isTyping))
		}
		// A dropped repeat is answered as the relay would have been: a chat
		// the caller cannot see is not_found, however often it is named.
		return done(st.s.chats.Member(ctx, st.conn.UserID(), chatID))
	}
}

func (st *connState) onHistory(v any, ack Ack) {
	st.on(laneQuery, EventChatHistory, v, ack, func(p *payload) func(ctx context.Context) (any, error) {
		chatID := p.String("chatId", true)
		q := chat.HistoryQuery{Before: p.Int64("before", false), After: p.Int64("after", false)}
		if limit := p.Int64("limit", false); limit != nil {
			// The service clamps a large limit to its page size; int is
			// only narrowed here so that a huge one cannot wrap negative.
			n := int(max(math.MinInt32, min(math.MaxInt32, *limit)))
			q.Limit = &n
		}
		return func(ctx context.Context) (any, error) {
			msgs, more, err := st.s.chats.History(ctx, st.conn.UserID(), *chatID, q)
			if err != nil {
				return nil, err
			}
			return historyAck{OK: true, History: wire.NewHistory(msgs, more)}, nil
		}
	})
}

// onPresence answers presence:get; see presence for who is answered for.
func (st *connState) onPresence(v any, ack Ack) {
	st.on(laneQuery, EventPresenceGet, v, ack, func(p *payload) func(ctx context.Context) (any, error) {
		ids := p.Strings("userIds", true)
		if len(ids) > maxPresenceIDs {
			p.refuse("userIds", fmt.Sprintf("at most %d", maxPresenceIDs))
		}
		return func(ctx context.Context) (any, error) { return st.presence(ctx, ids) }
	})
}

// presence answers for the users who share a chat with the caller (the
// contract's words: the caller itself is not among them), in the order
// asked, each once; any other id is left out, as ids that name no user are,
// so the answer tells a stranger nothing about who exists or is online.
func (st *connState) presence(ctx context.Context, ids []string) (any, error) {
	peers, err := st.s.chats.Peers(ctx, st.conn.UserID())
	if err != nil {
		return nil, fmt.Errorf("presence: look up peers: %w", err)
	}
	visible := make(map[string]bool, len(peers))
	for _, id := range peers {
		visible[id] = true
	}
	seen := make(map[string]bool, len(ids))
	valid := make([]string, 0, len(ids))
	for _, id := range ids {
		// Malformed ids name nothing; the store is not asked about them.
		if !seen[id] && visible[id] && store.ValidID(id) {
			seen[id] = true
			valid = append(valid, id)
		}
	}
	out := make([]wire.Presence, 0, len(valid))
	if len(valid) == 0 {
		return presenceAck{OK: true, Presence: out}, nil
	}
	users, err := st.s.users.UsersByIDs(ctx, valid)
	if err != nil {
		return nil, fmt.Errorf("presence: load users: %w", err)
	}
	byID := make(map[string]*store.User, len(users))
	for i := range users {
		byID[users[i].ID] = &users[i]
	}
	for _, id := range valid {
		if u, ok := byID[id]; ok {
			out = append(out, wire.Presence{UserID: id, Online: st.s.tracker.Online(id), LastSeenAt: wire.Time{Time: u.LastSeenAt}})
		}
	}
	return presenceAck{OK: true, Presence: out}, nil
}
