package events

// This is the one file that knows the Socket.IO library
// (github.com/zishang520/socket.io v3). It adapts the library's sockets to
// Conn and its rooms to fanout; everything Parley decides lives elsewhere.

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	eio "github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/parley-chat/parley/auth"
	"github.com/parley-chat/parley/internal/apperr"
)

type engine struct {
	s    *Server
	io   *socket.Server
	http http.Handler
	// pending carries a socket from the handshake middleware to the
	// connection handler.
	pending sync.Map // *socket.Socket -> *pendingConnect
	// connecting holds Engine.IO 3 handshakes by engine sid; see ServeHTTP.
	connecting sync.Map // string -> *pendingConnect
}

// pendingConnect is a socket between its handshake and its connection.
type pendingConnect struct {
	gen       uint64        // the membership generation of its room lookup
	awaiting  bool          // admitted without credentials, to wait for setup
	connected chan struct{} // closed once the library has registered it
	once      sync.Once
	onClose   types.EventListener // on the connection, until the connect
}

func (p *pendingConnect) done() { p.once.Do(func() { close(p.connected) }) }

// connectWait bounds how long a handshake holds back the client's next
// packet; the connect normally follows within microseconds.
const connectWait = 10 * time.Second

func newEngine(s *Server) (*engine, error) {
	cfg := s.cfg
	opts := socket.DefaultServerOptions()
	opts.SetPath("/socket.io")
	opts.SetServeClient(false)
	opts.SetAllowEIO3(true) // socket.io-client 2.x
	opts.SetTransports(types.NewSet(eio.Polling, eio.WebSocket))
	opts.SetAllowUpgrades(true)
	opts.SetPingInterval(cfg.PingInterval)
	opts.SetPingTimeout(cfg.PingTimeout)
	opts.SetMaxHttpBufferSize(cfg.MaxHTTPBufferSize)
	opts.SetCors(corsOptions(cfg.CORSOrigins))
	if cfg.RecoveryWindow > 0 {
		rec := socket.DefaultConnectionStateRecovery()
		rec.SetMaxDisconnectionDuration(cfg.RecoveryWindow.Milliseconds())
		// The library skips middlewares for a recovered socket by default;
		// the handshake check must run anyway, or a session ended while its
		// socket was away would come back through recovery.
		rec.SetSkipMiddlewares(false)
		opts.SetConnectionStateRecovery(rec)
		opts.SetAdapter(recoveryGuard{s})
	}
	io := socket.NewServer(nil, opts)
	e := &engine{s: s, io: io}
	e.http = io.ServeHandler(nil)
	io.Sockets().Use(e.authenticate)
	if err := io.On("connection", e.onConnection); err != nil {
		return nil, err
	}
	return e, nil
}

// recoveryGuard builds the session-aware (recovering) adapter with one
// check added. The library replays a recovered socket's missed packets as
// it builds the socket, before the handshake middleware has looked at the
// credentials, so a session ended while its socket was away must be
// refused at the restore itself.
type recoveryGuard struct{ s *Server }

func (g recoveryGuard) New(nsp socket.Namespace) socket.Adapter {
	return &guardedAdapter{SessionAwareAdapter: socket.NewSessionAwareAdapter(nsp), s: g.s}
}

type guardedAdapter struct {
	socket.SessionAwareAdapter
	s *Server
}

func (a *guardedAdapter) RestoreSession(pid socket.PrivateSessionId, offset string) (*socket.Session, error) {
	sess, err := a.SessionAwareAdapter.RestoreSession(pid, offset)
	if err != nil || sess == nil || sess.SessionToPersist == nil {
		return sess, err
	}
	if id, ok := sess.Data.(auth.Identity); !ok || a.s.wasRevoked(id.SessionID) {
		// Not restored: the client gets a fresh socket, if its
		// credentials still pass, and catches up with chat:history.
		return nil, nil
	}
	return sess, nil
}

// corsOptions follows REST: any origin without credentials, or exactly the
// configured ones with credentials. The engine also checks a websocket
// upgrade's Origin against it (without it, gorilla refuses cross-origin
// upgrades outright).
func corsOptions(origins []string) *types.Cors {
	if len(origins) == 0 {
		return &types.Cors{Origin: "*"}
	}
	return &types.Cors{Origin: append([]string(nil), origins...), Credentials: true}
}

// ServeHTTP serves polling requests and websocket upgrades.
func (e *engine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// gorilla/websocket asserts http.Hijacker on the writer itself, while
	// router middleware wraps writers and offers Hijack only through
	// Unwrap (http.ResponseController's convention).
	if _, ok := w.(http.Hijacker); !ok {
		w = hijackable{w}
	}
	if r.Method == http.MethodPost {
		// An Engine.IO 3 client's packets come in their own requests;
		// hold them until its socket is registered (see authenticate).
		if v, ok := e.connecting.Load(r.URL.Query().Get("sid")); ok {
			select {
			case <-v.(*pendingConnect).connected:
			case <-r.Context().Done():
				return
			case <-time.After(connectWait):
			}
		}
	}
	if r.Method == http.MethodGet {
		if q := r.URL.Query(); q.Get("transport") == "polling" && q.Get("sid") != "" {
			e.servePoll(w, r, q.Get("sid"), q.Get("EIO") == "3")
			return
		}
	}
	e.http.ServeHTTP(w, r)
}

// pollCloseGrace is how long a long-poll may stay unanswered after its
// session closed before servePoll answers it itself.
const pollCloseGrace = time.Second

// servePoll serves a long-poll GET, and answers it with a noop if the
// library leaves it hanging. The library (engine v3.0.6) can register a
// poll that crosses the client's close after the transport has shut its
// write queue; nothing ever answers that request, so the client's process
// and this handler would wait until the connection dies.
func (e *engine) servePoll(w http.ResponseWriter, r *http.Request, sid string, eio3 bool) {
	sock, ok := e.io.Engine().Clients().Load(sid)
	if !ok {
		e.http.ServeHTTP(w, r) // the library answers "Session ID unknown"
		return
	}
	closed := make(chan struct{})
	var once sync.Once
	onClose := types.EventListener(func(...any) { once.Do(func() { close(closed) }) })
	_ = sock.Once("close", onClose)
	defer sock.RemoveListener("close", onClose)
	if sock.ReadyState() == "closed" {
		once.Do(func() { close(closed) })
	}

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	gw := newGuardedWriter(w)
	served := make(chan struct{})
	go func() {
		defer close(served)
		e.http.ServeHTTP(gw, r.WithContext(ctx))
	}()
	select {
	case <-served:
		return
	case <-closed:
	}
	select {
	case <-served:
	case <-time.After(pollCloseGrace):
		noop := "6"
		if eio3 {
			noop = "1:6"
		}
		gw.answer(noop)
		cancel() // the library's handler returns once its request is cancelled
		<-served
	}
}

// guardedWriter lets exactly one party answer a request: the library, or
// servePoll when the library left it hanging. The library gets a header map
// of its own, copied out when it answers, so servePoll's answer never
// touches a map the library's goroutine may be writing.
type guardedWriter struct {
	w        http.ResponseWriter
	header   http.Header // the library's; read only under mu when it answers
	mu       sync.Mutex
	wrote    bool // the library has begun its answer
	answered bool // servePoll answered; the library's writes are dropped
}

func newGuardedWriter(w http.ResponseWriter) *guardedWriter {
	return &guardedWriter{w: w, header: http.Header{}}
}

func (g *guardedWriter) Header() http.Header { return g.header }

// beginLocked forwards the library's headers on its first write.
func (g *guardedWriter) beginLocked() {
	if g.wrote {
		return
	}
	g.wrote = true
	dst := g.w.Header()
	for k, v := range g.header {
		dst[k] = v
	}
}

func (g *guardedWriter) WriteHeader(code int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.answered {
		return
	}
	g.beginLocked()
	g.w.WriteHeader(code)
}

func (g *guardedWriter) Write(b []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.answered {
		return len(b), nil
	}
	g.beginLocked()
	return g.w.Write(b)
}

func (g *guardedWriter) Flush() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.answered {
		g.beginLocked()
		_ = http.NewResponseController(g.w).Flush()
	}
}

// answer writes body as the response unless the library began one.
func (g *guardedWriter) answer(body string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.wrote || g.answered {
		return
	}
	g.answered = true
	h := g.w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	g.w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(g.w, body)
	_ = http.NewResponseController(g.w).Flush()
}

type hijackable struct{ http.ResponseWriter }

func (h hijackable) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(h.ResponseWriter).Hijack()
}

func (h hijackable) Flush() { _ = http.NewResponseController(h.ResponseWriter).Flush() }

func (h hijackable) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// authenticate is the namespace middleware: it checks the credentials and
// puts the socket in its rooms before the client is told it is connected.
// Its error becomes the client's connect_error, the message being the
// error's message.
func (e *engine) authenticate(sock *socket.Socket, next func(*socket.ExtendedError)) {
	var r *http.Request
	if ctx := sock.Request(); ctx != nil {
		r = ctx.Request()
	}
	id, awaiting, err := e.s.admit(sock.Handshake().Auth, r)
	if err != nil {
		msg, transient := e.s.handshakeError(err)
		if transient {
			e.drop(sock, next)
			return
		}
		// v3/v4 clients get the code in err.data too; the Go client even
		// refuses a connect_error whose data is null. Engine.IO 3 clients
		// get data instead of the message when there is any, and their
		// contract is the bare message.
		var data any
		if sock.Conn().Protocol() != 3 {
			data = map[string]any{"code": msg}
		}
		next(socket.NewExtendedError(msg, data))
		return
	}
	var gen uint64
	if !awaiting && id.App == auth.AppMERN {
		// The MERN app's own session: its rooms are set on connect.
		sock.SetData(id)
	} else if !awaiting {
		// Data survives connection-state recovery with the socket's rooms.
		sock.SetData(id)
		gen, err = e.s.enterRooms(&sioConn{sock: sock, id: id})
		if err != nil {
			// A socket outside its chats' rooms would miss messages without
			// knowing; a dropped one reconnects and tries again.
			e.s.log.Warn("socket handshake: look up chats; dropping the connection", "user", id.UserID, "err", err)
			e.drop(sock, next)
			return
		}
	}
	pc := &pendingConnect{gen: gen, awaiting: awaiting, connected: make(chan struct{})}
	e.pending.Store(sock, pc)
	// If the socket never gets to connect, forget it and stop waiting.
	conn := sock.Conn()
	pc.onClose = func(...any) {
		e.pending.Delete(sock)
		e.connecting.Delete(conn.Id())
		pc.done()
	}
	_ = conn.Once("close", pc.onClose)
	if conn.Protocol() == 3 {
		e.connecting.Store(conn.Id(), pc)
	}
	next(nil)
	// The library writes CONNECT to the client before it registers the
	// socket for the client's packets, on another goroutine; an event the
	// client sends in its connect handler can land in between and be taken
	// for a protocol violation that closes the connection. For Engine.IO 4
	// this middleware runs on the path that decodes the client's packets,
	// so waiting here holds the next packet back until the socket is
	// registered. Engine.IO 3 connects from the handshake request
	// instead, and ServeHTTP holds its posts.
	if conn.Protocol() == 4 {
		select {
		case <-pc.connected:
		case <-time.After(connectWait):
			e.s.log.Warn("socket handshake: connect did not follow", "user", id.UserID)
		}
	}
}

// drop closes the connection during the handshake so that the client
// reconnects by itself; the library then discards the socket without
// sending anything.
func (e *engine) drop(sock *socket.Socket, next func(*socket.ExtendedError)) {
	sock.Conn().Close(false)
	next(socket.NewExtendedError(string(apperr.Unavailable), nil))
}

// onConnection runs on the socket's own event queue, so the socket's
// first event is handled only after setup.
func (e *engine) onConnection(args ...any) {
	sock, ok := args[0].(*socket.Socket)
	if !ok {
		return
	}
	v, known := e.pending.LoadAndDelete(sock)
	if !known {
		sock.Disconnect(false)
		return
	}
	pc := v.(*pendingConnect)
	// The library has registered the socket: its packets may flow. They
	// queue behind this handler, so they are handled after setup.
	pc.done()
	sock.Conn().RemoveListener("close", pc.onClose)
	e.connecting.Delete(sock.Conn().Id())
	id, ok := sock.Data().(auth.Identity)
	if !pc.awaiting && (!ok || id.UserID == "") {
		sock.Disconnect(false)
		return
	}
	st := e.s.newConn(&sioConn{sock: sock, id: id})
	_ = sock.On("disconnect", func(...any) { st.teardown() })
	// The transport may have gone before the listener was in place.
	if !sock.Connected() {
		st.teardown()
		return
	}
	switch {
	case pc.awaiting:
		st.awaitSetup()
	case id.App == auth.AppMERN:
		st.connectMERN()
	default:
		st.setup(pc.gen)
	}
	sock.Use(func(ev []any, next func(error)) {
		if len(ev) > 0 && st.admits(stringish(ev[0])) {
			next(nil)
		}
	})
	for _, name := range append(clientEvents, mernEvents...) {
		_ = sock.On(name, func(args ...any) {
			payload, ack := splitArgs(args)
			st.handle(name, payload, ack)
		})
	}
}

// splitArgs takes the library's listener arguments apart: the payload is
// the first argument, and the ack, when the client asked for one, the last.
func splitArgs(args []any) (any, Ack) {
	var ack Ack
	if n := len(args); n > 0 {
		if fn, ok := args[n-1].(socket.Ack); ok {
			ack = func(v any) { fn([]any{v}, nil) }
			args = args[:n-1]
		}
	}
	if len(args) == 0 {
		return nil, ack
	}
	return args[0], ack
}

// sioConn is a library socket as a Conn.
type sioConn struct {
	sock *socket.Socket
	mu   sync.RWMutex
	id   auth.Identity
}

func (c *sioConn) ID() string { return string(c.sock.Id()) }

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

// Bind sets the identity of a socket admitted without credentials.
func (c *sioConn) Bind(id auth.Identity) {
	c.mu.Lock()
	c.id = id
	c.mu.Unlock()
	c.sock.SetData(id)
}

// Emit sends payload as the event's one argument; a nil payload sends none
// (the MERN app's typing events carry nothing).
func (c *sioConn) Emit(event string, payload any) {
	if payload == nil {
		_ = c.sock.Emit(event)
		return
	}
	_ = c.sock.Emit(event, payload)
}
func (c *sioConn) Join(rooms ...string) { c.sock.Join(toRooms(rooms)...) }
func (c *sioConn) Leave(room string)    { c.sock.Leave(socket.Room(room)) }
func (c *sioConn) Disconnect()          { c.sock.Disconnect(false) }
func (c *sioConn) Drop()                { c.sock.Conn().Close(false) }

func (c *sioConn) Rooms() []string {
	keys := c.sock.Rooms().Keys()
	out := make([]string, len(keys))
	for i, r := range keys {
		out[i] = string(r)
	}
	return out
}

func toRooms(names []string) []socket.Room {
	rooms := make([]socket.Room, len(names))
	for i, n := range names {
		rooms[i] = socket.Room(n)
	}
	return rooms
}

// fanout over the default namespace's rooms.

func (e *engine) emit(to, except []string, event string, payload any) {
	op := e.io.To(toRooms(to)...)
	if len(except) > 0 {
		op = op.Except(toRooms(except)...)
	}
	if payload == nil {
		_ = op.Emit(event)
		return
	}
	_ = op.Emit(event, payload)
}

func (e *engine) join(in []string, rooms ...string) {
	e.io.In(toRooms(in)...).SocketsJoin(toRooms(rooms)...)
}

func (e *engine) leave(in []string, rooms ...string) {
	e.io.In(toRooms(in)...).SocketsLeave(toRooms(rooms)...)
}

func (e *engine) disconnect(in ...string) {
	e.io.In(toRooms(in)...).DisconnectSockets(false)
}

func (e *engine) close() { e.io.Close(nil) }
