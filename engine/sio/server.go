package sio

import (
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/parley-chat/parley/engine/eio"
)

// Options configure a Server; zero values take socket.io's defaults.
type Options struct {
	// Engine configures the Engine.IO server; its OnConnection is the
	// Socket.IO server's own.
	Engine eio.Options
	// ConnectTimeout closes a connection that joined no namespace within
	// it; default 45s.
	ConnectTimeout time.Duration
	// RecoveryWindow turns connection-state recovery on (4.x clients): a
	// socket that lost its connection comes back within it with its id,
	// rooms and the events it missed. Zero (the default) is off, and then
	// every event carries exactly its arguments, with no offset appended.
	RecoveryWindow time.Duration
	// AcceptRecovery, when set, decides whether a socket that passed the
	// middlewares (s.Data is what they set) may take back the disconnected
	// session whose Data was previous; refused, it connects as a new
	// socket. Recovery runs after the middlewares, so a refused handshake
	// never sees a missed packet.
	AcceptRecovery func(s *Socket, previous any) bool
	// Adapter builds each namespace's adapter; default NewLocalAdapter.
	Adapter func(*Namespace) Adapter
	// MaxAttachments bounds the binary attachments one packet may announce
	// (default 16); their total size is bounded by
	// Engine.MaxHTTPBufferSize.
	MaxAttachments int
	// HandshakeHeaders, when set, are the only request headers a
	// connection keeps in its Handshake (memory per idle connection);
	// nil keeps them all, as socket.io does.
	HandshakeHeaders []string
	Logger           *slog.Logger
}

// Server is a Socket.IO server. Mount it at the path clients use
// (/socket.io/).
type Server struct {
	opts Options
	eng  *eio.Server
	log  *slog.Logger

	mu      sync.RWMutex
	nsps    map[string]*Namespace
	clients map[*client]struct{}
	closed  bool
}

// NewServer builds a server with the main namespace "/".
func NewServer(opts Options) *Server {
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 45 * time.Second
	}
	if opts.Adapter == nil {
		opts.Adapter = func(n *Namespace) Adapter { return NewLocalAdapter(n) }
	}
	s := &Server{opts: opts, log: opts.Logger, nsps: map[string]*Namespace{}, clients: map[*client]struct{}{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.Of("/")
	eopts := opts.Engine
	eopts.OnConnection = func(es *eio.Socket, r *http.Request) {
		s.accept(eioConn{es}, newHandshake(r, es.RemoteAddr(), opts.HandshakeHeaders))
	}
	s.eng = eio.NewServer(eopts)
	return s
}

// ServeHTTP serves Engine.IO requests.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.eng.ServeHTTP(w, r) }

// Engine is the underlying Engine.IO server.
func (s *Server) Engine() *eio.Server { return s.eng }

// Of returns the namespace called name, creating it. Clients may connect
// only to namespaces that exist; others are refused "Invalid namespace".
func (s *Server) Of(name string) *Namespace {
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.nsps[name]; n != nil {
		return n
	}
	n := &Namespace{name: name, server: s, sockets: map[string]*Socket{}}
	n.adapter = s.opts.Adapter(n)
	s.nsps[name] = n
	return n
}

// Sockets is the main namespace.
func (s *Server) Sockets() *Namespace { return s.Of("/") }

func (s *Server) nsp(name string) *Namespace {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.nsps[name]
}

// Close disconnects every socket ("server shutting down"), closes every
// connection and stops the engine.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	clients := make([]*client, 0, len(s.clients))
	for c := range s.clients {
		clients = append(clients, c)
	}
	nsps := make([]*Namespace, 0, len(s.nsps))
	for _, n := range s.nsps {
		nsps = append(nsps, n)
	}
	s.mu.Unlock()
	for _, c := range clients {
		c.closeSockets("server shutting down")
		c.conn.Close()
	}
	s.eng.Close()
	for _, n := range nsps {
		n.adapter.Close()
	}
}

// Handshake is what a connection's handshake request said; every socket
// of the connection shares it. Auth is per socket (Socket.Auth).
type Handshake struct {
	Headers http.Header
	Query   url.Values
	Address string
	Time    time.Time
	URL     string
	Secure  bool
}

func newHandshake(r *http.Request, addr string, keep []string) *Handshake {
	if r == nil {
		return &Handshake{Headers: http.Header{}, Query: url.Values{}, Address: addr, Time: time.Now()}
	}
	h := http.Header{}
	if keep == nil {
		h = r.Header.Clone()
	} else {
		for _, k := range keep {
			if v := r.Header.Values(k); len(v) > 0 {
				h[http.CanonicalHeaderKey(k)] = append([]string(nil), v...)
			}
		}
	}
	return &Handshake{
		Headers: h, Query: r.URL.Query(), Address: addr, Time: time.Now(),
		URL: r.URL.RequestURI(), Secure: r.TLS != nil,
	}
}

// engineConn is the part of an Engine.IO socket a client uses; tests fake it.
type engineConn interface {
	ID() string
	Protocol() int
	SetHandler(h eio.Handler)
	send(f *frames) error
	Close()
	Drop()
}

type eioConn struct{ *eio.Socket }

func (c eioConn) send(f *frames) error { return c.Socket.Send(f.msgs...) }

// newID is a socket id: 20 URL-safe characters, as socket.io's.
func newID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// accept makes a client of a new Engine.IO connection. Protocol 4 clients
// (Engine.IO 3) are connected to "/" at once, with the handshake query
// as their auth, as the reference server does.
func (s *Server) accept(conn engineConn, hs *Handshake) *client {
	c := &client{srv: s, conn: conn, hs: hs}
	c.dec.MaxAttachments = s.opts.MaxAttachments
	c.dec.MaxBytes = int(s.opts.Engine.MaxHTTPBufferSize)
	conn.SetHandler(c)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		conn.Close()
		return c
	}
	s.clients[c] = struct{}{}
	s.mu.Unlock()
	c.mu.Lock()
	c.timer = time.AfterFunc(s.opts.ConnectTimeout, c.connectTimeout)
	c.mu.Unlock()
	if conn.Protocol() == 3 {
		c.connect("/", queryAuth(hs.Query))
	}
	return c
}

// queryAuth turns a query into an auth object of strings (its first values).
func queryAuth(q url.Values) map[string]any {
	out := make(map[string]any, len(q))
	for k, v := range q {
		if len(v) > 0 {
			out[k] = v[0]
		}
	}
	return out
}

// client is one Engine.IO connection and its sockets, one per namespace.
type client struct {
	srv  *Server
	conn engineConn
	hs   *Handshake
	dec  Decoder // used only by OnMessage, which the engine calls in order

	mu      sync.Mutex
	sockets map[string]*Socket // by namespace
	closed  bool
	timer   *time.Timer
}

var _ eio.Handler = (*client)(nil)

// OnMessage decodes one Engine.IO message; a complete packet is handled
// before the next message is read, so a handler sees a socket's packets in
// order.
func (c *client) OnMessage(data []byte, binary bool) {
	p, err := c.dec.Add(data, binary)
	if err != nil {
		c.srv.log.Debug("socket.io: closing a connection over a malformed packet", "conn", c.conn.ID(), "err", err)
		c.closeSockets("parse error")
		c.conn.Close()
		return
	}
	if p == nil {
		return
	}
	if p.Type == Connect {
		if c.conn.Protocol() == 3 {
			name, query, _ := strings.Cut(p.Nsp, "?")
			q, _ := url.ParseQuery(query)
			c.connect(name, queryAuth(q))
			return
		}
		auth, _ := p.Data.(map[string]any)
		c.connect(p.Nsp, auth)
		return
	}
	c.mu.Lock()
	sock := c.sockets[p.Nsp]
	c.mu.Unlock()
	if sock != nil {
		sock.onPacket(p)
	}
}

// OnClose ends every socket of the connection.
func (c *client) OnClose(reason string) {
	c.closeSockets(reason)
}

func (c *client) closeSockets(reason string) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	socks := make([]*Socket, 0, len(c.sockets))
	for _, s := range c.sockets {
		socks = append(socks, s)
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
	for _, s := range socks {
		s.onClose(reason)
	}
	c.srv.mu.Lock()
	delete(c.srv.clients, c)
	c.srv.mu.Unlock()
}

// connectTimeout closes a connection that joined no namespace in time.
func (c *client) connectTimeout() {
	c.mu.Lock()
	idle := !c.closed && len(c.sockets) == 0
	c.mu.Unlock()
	if idle {
		c.closeSockets("connect timeout")
		c.conn.Close()
	}
}

// remove forgets a socket that left its namespace.
func (c *client) remove(s *Socket) {
	c.mu.Lock()
	if c.sockets[s.nsp.name] == s {
		delete(c.sockets, s.nsp.name)
	}
	c.mu.Unlock()
}

// sendPacket encodes a packet for this connection alone.
func (c *client) sendPacket(p *Packet) {
	enc, err := Encode(p)
	if err != nil {
		c.srv.log.Error("socket.io: encode", "type", p.Type, "err", err)
		return
	}
	_ = c.conn.send(enc.frames())
}

// connect runs a namespace CONNECT: the middlewares, recovery, the
// registration of the socket in its rooms, the connection callback, and
// only then the CONNECT answer, followed by whatever the socket was sent
// meanwhile.
func (c *client) connect(name string, auth map[string]any) {
	nsp := c.srv.nsp(name)
	if nsp == nil {
		var data any = map[string]any{"message": "Invalid namespace"}
		if c.conn.Protocol() == 3 {
			data = "Invalid namespace"
		}
		c.sendPacket(&Packet{Type: ConnectError, Nsp: name, ID: NoID, Data: data})
		return
	}
	c.mu.Lock()
	_, dup := c.sockets[name]
	closed := c.closed
	c.mu.Unlock()
	if dup || closed {
		return
	}
	if auth == nil {
		auth = map[string]any{}
	}
	s := newSocket(nsp, c, auth)
	for _, mw := range nsp.middlewares() {
		if err := mw(s); err != nil {
			c.refuse(s, err)
			return
		}
	}
	if c.srv.opts.RecoveryWindow > 0 && c.conn.Protocol() == 4 {
		s.restore(auth)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if c.sockets == nil {
		c.sockets = map[string]*Socket{}
	}
	c.sockets[name] = s
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	c.mu.Unlock()
	nsp.add(s)
	if fn := nsp.connectionHandler(); fn != nil {
		fn(s)
	}
	s.forgetAuth()
	s.open()
}

// refuse answers a CONNECT that a middleware refused.
func (c *client) refuse(s *Socket, err error) {
	var data any
	if c.conn.Protocol() == 3 {
		// The reference sends err.data, or else the message.
		data = err.Error()
		if ce, ok := err.(*Refusal); ok && ce.Data != nil {
			data = ce.Data
		}
	} else {
		body := map[string]any{"message": err.Error()}
		if ce, ok := err.(*Refusal); ok && ce.Data != nil {
			body["data"] = ce.Data
		}
		data = body
	}
	c.sendPacket(&Packet{Type: ConnectError, Nsp: s.nsp.name, ID: NoID, Data: data})
}

// Refusal is a middleware's refusal with data for the client
// (connect_error's err.data); any other error sends only its message.
type Refusal struct {
	Message string
	Data    any
}

func (e *Refusal) Error() string { return e.Message }
