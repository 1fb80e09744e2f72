package events

// The MERN dialect: the socket events of the MERN chat app whose frontend
// Parley serves unchanged (see package mern for its REST API). Its sockets
// connect without credentials and bind themselves with `setup(user)`
// (user.token is the token its login returned), or, served from WEB_ROOT,
// come with the cookie of a session the MERN API started (connectMERN).
// They live in rooms of their own, so that no native event reaches them
// and no native socket pays for them:
//
//	mern:user:<uid>   every MERN socket of a user (message deliveries)
//	mern:chat:<cid>   the MERN sockets that sent `join chat` (typing)
//	session:<sid>     shared with native sockets, for revocation
//
// The chat service broadcasts as always; ToChat and ToUsers hand the two
// events the app knows to this file, which renders a stored message in
// the app's shape once per message and sends `message recieved` to the
// members' MERN sockets, and turns typing into `typing` / `stop typing`.

// What the engine adapter (engine.go) does for this dialect, and any
// replacement engine must do too:
//   - decide each handshake with Server.admit; one admitted "awaiting" joins
//     no room, and on connect gets connState.awaitSetup instead of setup;
//     one whose Identity.App is auth.AppMERN joins no native room, and on
//     connect gets connState.connectMERN instead of setup;
//   - ask connState.admits about every incoming event, in arrival order,
//     before handling it, and drop the event when it says no (it has then
//     ended the socket);
//   - deliver mernEvents to connState.handle like clientEvents;
//   - give its Conn a Bind(auth.Identity, release) (binder) that holds the
//     user's slot (Server.admitUser) until the socket goes;
//   - send no argument at all for a nil payload (Conn.Emit and fanout.emit):
//     the app's `connected`, `typing` and `stop typing` carry nothing.

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-chat/parley/auth"
	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/apperr"
	"github.com/parley-chat/parley/internal/wire"
)

// MERN event names, as the app spells them ("recieved" included).
const (
	MERNSetup           = "setup"
	MERNConnected       = "connected"
	MERNJoinChat        = "join chat"
	MERNTyping          = "typing"
	MERNStopTyping      = "stop typing"
	MERNNewMessage      = "new message"
	MERNMessageReceived = "message recieved"
)

// mernEvents are the client events of the dialect besides "typing", which
// native clients send too (with an object where the app sends a chat id).
var mernEvents = []string{MERNSetup, MERNJoinChat, MERNStopTyping, MERNNewMessage}

func mernUserRoom(userID string) string { return "mern:user:" + userID }
func mernChatRoom(chatID string) string { return "mern:chat:" + chatID }

func mernUserRooms(userIDs []string) []string {
	rooms := make([]string, len(userIDs))
	for i, id := range userIDs {
		rooms[i] = mernUserRoom(id)
	}
	return rooms
}

// MERNRenderer renders a stored message in the app's shape and names the
// chat's members; *mern.Renderer implements it.
type MERNRenderer interface {
	Delivery(ctx context.Context, m wire.Message) (payload any, members []string, err error)
}

// binder is a Conn whose identity is set after it connected: one admitted
// without credentials, bound by its setup event.
type binder interface {
	Bind(id auth.Identity, release func())
}

// Dialects of a socket.
const (
	dialectNative   int32 = iota // authenticated at the handshake, native events
	dialectAwaiting              // no credentials yet: only setup is accepted
	dialectMERN                  // bound by setup: MERN rooms and events
)

// mernConn is one socket's MERN state.
type mernConn struct {
	dialect   atomic.Int32
	setupSeen atomic.Bool
	timerMu   sync.Mutex
	timer     *time.Timer
}

func (m *mernConn) stopTimer() {
	m.timerMu.Lock()
	defer m.timerMu.Unlock()
	if m.timer != nil {
		m.timer.Stop()
	}
}

// awaitSetup puts a socket admitted without credentials in the waiting
// state: it is in no room, and is dropped unless setup comes in time.
func (st *connState) awaitSetup() {
	st.mern.dialect.Store(dialectAwaiting)
	st.mern.timerMu.Lock()
	defer st.mern.timerMu.Unlock()
	st.mern.timer = time.AfterFunc(st.s.cfg.SetupTimeout, func() {
		if st.mern.dialect.Load() == dialectAwaiting && !st.mern.setupSeen.Load() {
			st.s.metrics.event(MERNSetup, "timeout")
			st.conn.Disconnect()
		}
	})
}

// admits is asked for every incoming event before it is queued: a waiting
// socket's first event must be setup, else the socket is dropped. Events
// after a setup queue behind it, and are handled once it has bound the
// socket (or ignored if it failed and dropped it).
func (st *connState) admits(event string) bool {
	if st.mern.dialect.Load() != dialectAwaiting || st.mern.setupSeen.Load() {
		return true
	}
	if event == MERNSetup {
		st.mern.setupSeen.Store(true)
		st.mern.stopTimer()
		return true
	}
	st.s.metrics.event(MERNSetup, "event_before_setup") // not the event's own name: clients choose those
	st.conn.Disconnect()
	return false
}

// handleMERN handles the dialect's events and reports whether event was
// one; the rest are native events.
func (st *connState) handleMERN(event string, payload any, ack Ack) bool {
	d := st.mern.dialect.Load()
	if d == dialectAwaiting {
		if event == MERNSetup {
			st.onSetup(payload, ack)
		}
		return true
	}
	if event == MERNSetup {
		st.onSetup(payload, ack)
		return true
	}
	if d != dialectMERN {
		return false
	}
	switch event {
	case MERNJoinChat:
		st.onJoinChat(payload)
	case MERNTyping, MERNStopTyping:
		chatID, ok := mernID(payload)
		if !ok {
			// A native typing object from a MERN socket is a native event.
			return event == MERNStopTyping
		}
		st.relayTyping(chatID, event == MERNTyping, ack)
	case MERNNewMessage:
		// The app emits this after its POST /api/message, to have its
		// server relay the message. Parley already delivered it when it
		// was stored, so relaying again would deliver it twice.
	default:
		return false
	}
	return true
}

// mernID reads a chat id as the app sends it: a string, or an object with
// an _id.
func mernID(v any) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, t != ""
	case map[string]any:
		id, ok := t["_id"].(string)
		return id, ok && id != ""
	}
	return "", false
}

// setupToken reads the token from setup's payload: the app sends its whole
// login response, {_id, name, ..., token}.
func setupToken(v any) string {
	switch t := v.(type) {
	case map[string]any:
		s, _ := t["token"].(string)
		return s
	case string:
		return t
	}
	return ""
}

// onSetup binds the socket to the user of setup's token and moves it into
// the dialect's rooms. On a socket admitted without credentials a missing
// or bad token drops it; on one that came with credentials the token, if
// any, must name the same user.
func (st *connState) onSetup(payload any, ack Ack) {
	s, c := st.s, st.conn
	token := setupToken(payload)
	switch st.mern.dialect.Load() {
	case dialectMERN:
		c.Emit(MERNConnected, nil)
		return
	case dialectAwaiting:
		id, err := s.authenticate(token)
		if err != nil {
			st.refuseSetup(err)
			return
		}
		b, ok := c.(binder)
		if !ok {
			c.Disconnect()
			return
		}
		// The user's open-socket limit applies from here, as it does
		// at a handshake with credentials.
		release, err := s.admitUser(id)
		if err != nil {
			st.refuseSetup(err)
			return
		}
		b.Bind(id, release)
		st.enterMERN()
		st.track()
	default: // native, authenticated at the handshake
		if token != "" {
			id, err := s.authenticate(token)
			if err != nil || id.UserID != c.UserID() {
				st.refuseSetup(err)
				return
			}
		}
		st.enterMERN()
	}
	s.metrics.event(MERNSetup, "ok")
	c.Emit(MERNConnected, nil)
}

// enterMERN puts a bound socket in the dialect's rooms, and only those:
// native rooms would hand the app events it misreads (a native typing
// object reads as "typing" whatever it says).
func (st *connState) enterMERN() {
	s, c := st.s, st.conn
	s.membership.RLock()
	defer s.membership.RUnlock()
	for _, r := range c.Rooms() {
		if r != c.ID() {
			c.Leave(r)
		}
	}
	c.Join(sessionRoom(c.SessionID()), mernUserRoom(c.UserID()))
	st.mern.dialect.Store(dialectMERN)
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.closed && !st.bound {
		st.bound = true
		s.mern.bound.Add(1)
	}
}

// connectMERN connects a socket whose handshake token the MERN API issued
// (Identity.App): the app itself, reconnecting with its cookie after a
// drop, which it does not follow with setup. It is the app's socket from
// the start.
func (st *connState) connectMERN() {
	st.enterMERN()
	st.track()
}

// refuseSetup ends a socket whose setup failed: for bad credentials from
// the server side (the client does not retry them), for an outage by
// dropping the transport (the client reconnects, and its token may pass).
func (st *connState) refuseSetup(err error) {
	e := apperr.From(err)
	if err == nil {
		e = apperr.From(auth.ErrUnauthenticated)
	}
	st.s.metrics.event(MERNSetup, string(e.Code))
	if e.Code == apperr.Unauthorized || e.Code == apperr.RateLimited {
		// A client told by the server to go does not retry: a retry
		// would meet the same refusal.
		st.conn.Disconnect()
		return
	}
	st.s.log.Warn("socket setup: credential check failed; dropping the connection", "err", err)
	st.conn.Drop()
}

// onJoinChat puts the socket in a chat's MERN room, for typing; members only.
func (st *connState) onJoinChat(payload any) {
	chatID, ok := mernID(payload)
	if !ok {
		st.reply(MERNJoinChat, nil, nil, errNotObject)
		return
	}
	st.run(laneQuery, MERNJoinChat, nil, func(ctx context.Context) (any, error) {
		// Under the membership lock a removal cannot slip between the
		// check and the join (LeaveChat clears the MERN rooms too).
		st.s.membership.RLock()
		defer st.s.membership.RUnlock()
		if err := st.s.chats.Member(ctx, st.conn.UserID(), chatID); err != nil {
			return nil, err
		}
		st.conn.Join(mernChatRoom(chatID))
		return nil, nil
	})
}

// mernLanes is how many ordered lanes deliver MERN messages: one chat's
// messages always take the same lane, so they arrive in order.
const mernLanes = 8

// mernServer renders and delivers messages to MERN sockets off the send
// path, in order per chat.
type mernServer struct {
	render MERNRenderer
	seed   maphash.Seed
	lanes  [mernLanes]*lane
	// bound counts this node's sockets in the MERN dialect. A single node
	// with none renders no message for the dialect: rendering loads the
	// chat's users, which a native-only deployment would pay on every send.
	bound atomic.Int64
}

func (m *mernServer) init(r MERNRenderer, work *inflight) {
	m.render = r
	m.seed = maphash.MakeSeed()
	for i := range m.lanes {
		m.lanes[i] = newLane(4*laneLimit, work)
	}
}

// mernDeliveryTimeout bounds rendering one message (a chat and its users).
const mernDeliveryTimeout = 10 * time.Second

// mernToChat sends every stored message, however it was sent, to the MERN
// sockets of the chat's members but the sender's, rendered once.
func (s *Server) mernToChat(chatID, event string, payload any) {
	if s.mern.render == nil || event != chat.EventMessageNew {
		return
	}
	m, ok := payload.(wire.Message)
	if !ok {
		return
	}
	if s.adapter == nil && s.mern.bound.Load() == 0 {
		// One node, and no MERN socket on it to receive the message. (In a
		// cluster the app's sockets may be on any node: always render.)
		return
	}
	l := s.mern.lanes[maphash.String(s.mern.seed, chatID)%mernLanes]
	l.push(func() {
		ctx, cancel := context.WithTimeout(s.ctx, mernDeliveryTimeout)
		defer cancel()
		out, members, err := s.mern.render.Delivery(ctx, m)
		if err != nil {
			s.log.Error("mern: render message for delivery", "chat", chatID, "message", m.ID, "err", err)
			return
		}
		to := make([]string, 0, len(members))
		for _, uid := range members {
			if uid != m.SenderID {
				to = append(to, mernUserRoom(uid))
			}
		}
		if len(to) > 0 {
			s.out.emit(to, nil, MERNMessageReceived, out)
		}
	})
}

// mernToUsers relays typing to the MERN sockets that joined the chat,
// but the typer's own.
func (s *Server) mernToUsers(event string, payload any) {
	if event != chat.EventTyping {
		return
	}
	t, ok := payload.(wire.Typing)
	if !ok {
		return
	}
	name := MERNStopTyping
	if t.IsTyping {
		name = MERNTyping
	}
	s.out.emit([]string{mernChatRoom(t.ChatID)}, []string{mernUserRoom(t.UserID)}, name, nil)
}
