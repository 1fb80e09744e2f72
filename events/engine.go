package events

// This is the one file that knows the Socket.IO engine (engine/sio over
// engine/eio). It adapts its sockets to Conn and its rooms to fanout;
// everything Parley decides lives elsewhere.

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-chat/parley/auth"
	"github.com/parley-chat/parley/engine/eio"
	"github.com/parley-chat/parley/engine/sio"
	"github.com/parley-chat/parley/internal/apperr"
)

type engine struct {
	s   *Server
	io  *sio.Server
	nsp *sio.Namespace
	// releases holds the slots each admitted socket holds (see admit),
	// given back once when the socket goes.
	releases sync.Map // *sio.Socket → *heldSlots
}

// release gives back the slots sock holds, once.
func (e *engine) release(sock *sio.Socket) {
	if h, ok := e.releases.LoadAndDelete(sock); ok {
		h.(*heldSlots).releaseAll()
	}
}

// hold keeps release until sock goes.
func (e *engine) hold(sock *sio.Socket, release func()) *heldSlots {
	h := &heldSlots{releases: []func(){release}}
	e.releases.Store(sock, h)
	sock.OnDisconnect(func(string) { e.release(sock) })
	return h
}

// heldSlots are the limiter slots one socket holds: its address's from the
// handshake, its user's from the handshake or, for a socket that waited
// for the MERN app's setup, from the setup.
type heldSlots struct {
	mu       sync.Mutex
	releases []func()
	done     bool
}

// add holds one more release; on a socket already gone it runs at once, so
// a slot taken while the socket closed is never kept.
func (h *heldSlots) add(release func()) {
	h.mu.Lock()
	if !h.done {
		h.releases = append(h.releases, release)
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()
	release()
}

func (h *heldSlots) releaseAll() {
	h.mu.Lock()
	fns := h.releases
	h.releases, h.done = nil, true
	h.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

func newEngine(s *Server, reg prometheus.Registerer) (*engine, error) {
	cfg := s.cfg
	m := eio.NewMetrics()
	if reg != nil {
		for _, c := range m.Collectors() {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register engine metrics: %w", err)
			}
		}
	}
	opts := sio.Options{
		Engine: eio.Options{
			PingInterval:      cfg.PingInterval,
			PingTimeout:       cfg.PingTimeout,
			MaxHTTPBufferSize: cfg.MaxHTTPBufferSize,
			AllowEIO3:         true, // socket.io-client 2.x
			// REST's rule: any origin without credentials, or exactly
			// the configured ones with credentials; a websocket upgrade's
			// Origin is checked against it too.
			CORS:          eio.CORS{AllowOrigins: cfg.CORSOrigins},
			MaxQueueBytes: cfg.SocketQueueBytes,
			Metrics:       m,
		},
		// The handshake keeps only the headers a credential comes in, and
		// the proxies' client address (TRUSTED_PROXIES).
		HandshakeHeaders: []string{"Authorization", "Cookie", "X-Forwarded-For"},
		Logger:           s.log,
		Adapter:          s.adapter,
	}
	if cfg.RecoveryWindow > 0 {
		opts.RecoveryWindow = cfg.RecoveryWindow
		opts.AcceptRecovery = func(sock *sio.Socket, previous any) bool { return s.mayRecover(previous, sock.Data()) }
	}
	io := sio.NewServer(opts)
	e := &engine{s: s, io: io, nsp: io.Sockets()}
	e.nsp.Use(e.authenticate)
	e.nsp.OnConnection(e.onConnection)
	return e, nil
}

// mayRecover tells whether a dropped socket's state (previous: its
// identity) may come back to a handshake whose credentials passed
// (current): only to the same session, and not once that session ended
// meanwhile. The missed packets, which are the old rooms' events, are
// replayed with the restore, so the check must be there.
func (s *Server) mayRecover(previous, current any) bool {
	prev, ok := previous.(auth.Identity)
	cur, ok2 := current.(auth.Identity)
	return ok && ok2 && prev.UserID != "" && prev.UserID == cur.UserID && prev.SessionID == cur.SessionID &&
		!s.wasRevoked(prev.SessionID)
}

// ServeHTTP serves polling requests and websocket upgrades.
func (e *engine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// A websocket upgrade hijacks the connection, while router middleware
	// wraps writers and offers Hijack only through Unwrap
	// (http.ResponseController's convention).
	if _, ok := w.(http.Hijacker); !ok {
		w = hijackable{w}
	}
	e.io.ServeHTTP(w, r)
}

type hijackable struct{ http.ResponseWriter }

func (h hijackable) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(h.ResponseWriter).Hijack()
}

func (h hijackable) Flush() { _ = http.NewResponseController(h.ResponseWriter).Flush() }

func (h hijackable) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// authenticate is the namespace middleware: it checks the credentials.
// Its error becomes the client's connect_error, the message being the
// error's message.
func (e *engine) authenticate(sock *sio.Socket) error {
	hs := sock.Handshake()
	if !presentsCredentials(sock.Auth(), hs.Query, hs.Headers) {
		// No credentials at all: let in to wait for the MERN app's setup,
		// within the address's limits like any handshake; the user's
		// slot is taken at setup.
		release, err := e.s.admitAddress(hs.Address, hs.Headers)
		if err != nil {
			return e.refusal(sock, err)
		}
		sock.SetData(awaitingSetup{slots: e.hold(sock, release)})
		return nil
	}
	id, release, err := e.s.admit(handshakeToken(sock.Auth(), hs.Query, hs.Headers), hs.Address, hs.Headers)
	if err != nil {
		return e.refusal(sock, err)
	}
	// The socket's slots are held until it goes.
	e.hold(sock, release)
	// Data survives connection-state recovery with the socket's rooms.
	sock.SetData(id)
	return nil
}

// refusal turns a failed admission into the client's connect_error.
func (e *engine) refusal(sock *sio.Socket, err error) error {
	msg, transient := e.s.handshakeError(err)
	if transient {
		// Dropped without an answer: the client reconnects by itself.
		sock.Drop()
		return errors.New(string(apperr.Unavailable))
	}
	if sock.Protocol() == 3 {
		// A 2.x client's contract is the bare message.
		return errors.New(msg)
	}
	// v3/v4 clients get the code in err.data too.
	return &sio.Refusal{Message: msg, Data: map[string]any{"code": msg}}
}

// awaitingSetup is the data of a socket admitted without credentials:
// the slots it holds, to which its setup adds the user's.
type awaitingSetup struct{ slots *heldSlots }

// onConnection runs once the socket is registered, before its client is
// told it is connected and before any of its events is handled: whatever
// reaches its rooms from here on reaches it, after the CONNECT.
func (e *engine) onConnection(sock *sio.Socket) {
	waiting, awaiting := sock.Data().(awaitingSetup)
	id, ok := sock.Data().(auth.Identity)
	if !awaiting && (!ok || id.UserID == "") {
		sock.Disconnect(false)
		e.release(sock)
		return
	}
	c := &sioConn{sock: sock, id: id, slots: waiting.slots}
	var seen roomLookup
	if !awaiting && id.App != auth.AppMERN {
		var err error
		seen, err = e.s.enterRooms(c)
		if err != nil {
			// A socket outside its chats' rooms would miss messages without
			// knowing; a dropped one reconnects and tries again.
			e.s.log.Warn("socket handshake: look up chats; dropping the connection", "user", id.UserID, "err", err)
			sock.Drop()
			e.release(sock)
			return
		}
	}
	st := e.s.newConn(c)
	sock.OnDisconnect(func(string) { st.teardown(); e.release(sock) })
	// The transport may have gone before the handler was in place.
	if !sock.Connected() {
		st.teardown()
		e.release(sock)
		return
	}
	switch {
	case awaiting:
		st.awaitSetup()
	case id.App == auth.AppMERN:
		st.connectMERN()
	default:
		st.setup(seen)
	}
	sock.OnEvent(func(event string, args []any, ack sio.AckFunc) {
		// Events arrive one at a time on the read path, so admits sees
		// them in order (a waiting socket's first must be setup).
		if !st.admits(event) || !clientEvent[event] {
			return
		}
		var payload any
		if len(args) > 0 {
			payload = args[0]
		}
		var a Ack
		if ack != nil {
			a = func(v any) { ack(v) }
		}
		st.handle(event, payload, a)
	})
}

var clientEvent = func() map[string]bool {
	m := map[string]bool{}
	for _, name := range append(clientEvents, mernEvents...) {
		m[name] = true
	}
	return m
}()

// sioConn is an engine socket as a Conn.
type sioConn struct {
	sock *sio.Socket
	mu   sync.RWMutex
	id   auth.Identity
	// slots of a socket that waited for setup, which Bind adds to.
	slots *heldSlots
}

func (c *sioConn) ID() string { return c.sock.ID() }

func (c *sioConn) UserID() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.id.UserID
}

func (c *sioConn) SessionID() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.id.SessionID
}

// Bind sets the identity of a socket admitted without credentials
// (mern.go); the socket holds release (the user's slot) until it goes.
func (c *sioConn) Bind(id auth.Identity, release func()) {
	c.mu.Lock()
	c.id = id
	c.mu.Unlock()
	c.sock.SetData(id)
	if c.slots == nil {
		release()
		return
	}
	c.slots.add(release)
}

// Emit sends payload as the event's one argument; a nil payload sends none
// (the MERN app's connected, typing and stop typing carry nothing).
func (c *sioConn) Emit(event string, payload any) { _ = c.sock.Emit(event, eventArgs(payload)...) }

func eventArgs(payload any) []any {
	if payload == nil {
		return nil
	}
	return []any{payload}
}
func (c *sioConn) Join(rooms ...string) { c.sock.Join(rooms...) }
func (c *sioConn) Leave(room string)    { c.sock.Leave(room) }
func (c *sioConn) Disconnect()          { c.sock.Disconnect(false) }
func (c *sioConn) Drop()                { c.sock.Drop() }
func (c *sioConn) Rooms() []string      { return c.sock.Rooms() }

// fanout over the main namespace's rooms.

func (e *engine) emit(to, except []string, event string, payload any) {
	if len(to) == 0 {
		return // never the whole namespace by accident
	}
	if err := e.nsp.Broadcast(sio.BroadcastOptions{Rooms: to, Except: except}, event, eventArgs(payload)...); err != nil {
		e.s.log.Error("socket broadcast: encode", "event", event, "err", err)
	}
}

func (e *engine) join(in []string, rooms ...string) { e.nsp.In(in...).SocketsJoin(rooms...) }

func (e *engine) leave(in []string, rooms ...string) { e.nsp.In(in...).SocketsLeave(rooms...) }

func (e *engine) disconnect(in ...string) { e.nsp.In(in...).DisconnectSockets(false) }

func (e *engine) close() { e.io.Close() }
