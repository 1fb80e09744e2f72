package eio

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/cors"
)

// Options configures a Server. Zero values take the reference server's defaults.
type Options struct {
	PingInterval, PingTimeout, UpgradeTimeout time.Duration // defaults 25s, 20s, 10s
	// MaxHTTPBufferSize bounds a polling POST body (larger: 413, the session stays, as the
	// reference) and a websocket message (larger: close 1009, "transport error"). Default 1e6.
	MaxHTTPBufferSize int64
	AllowEIO3         bool     // Engine.IO 3 (socket.io-client 2.x)
	Transports        []string // default {"polling","websocket"}
	DisableUpgrades   bool     // the reference's allowUpgrades=false
	CORS              CORS
	// MaxQueueBytes bounds one socket's outbound queue; over it the socket is closed with
	// reason "queue overflow". Default 1 MiB.
	MaxQueueBytes int
	CookieName    string // "" = no io cookie (the default, as Node's 4.x)
	// AllowRequest runs on a handshake request before a session is made; a non-nil error
	// refuses it with 403 {"code":4,"message":<the error's text>} as the reference does.
	AllowRequest func(r *http.Request) error
	// OnConnection runs once a handshake succeeded, before any message of that socket is
	// delivered. It must call s.SetHandler. r is the handshake request; do not keep it.
	OnConnection func(s *Socket, r *http.Request)
	Metrics      *Metrics // optional
}

// CORS mirrors the reference server's cors option.
type CORS struct {
	// AllowOrigins empty: "Access-Control-Allow-Origin: *" without credentials. Otherwise only
	// those origins, with credentials; a websocket upgrade from another Origin is refused.
	AllowOrigins []string
}

// Handler receives one socket's messages and its close.
type Handler interface {
	// OnMessage gets one Engine.IO "message" packet; data is valid only during the call.
	OnMessage(data []byte, binary bool)
	// OnClose is called exactly once, after the last OnMessage; reasons as the reference.
	OnClose(reason string)
}

// Handshake error codes and messages, byte for byte as the reference server's.
const (
	codeUnknownTransport = iota
	codeUnknownSID
	codeBadHandshakeMethod
	codeBadRequest
	codeForbidden
	codeUnsupportedProtocol
)

var errorMessages = [...]string{
	"Transport unknown",
	"Session ID unknown",
	"Bad handshake method",
	"Bad request",
	"Forbidden",
	"Unsupported protocol version",
}

// Server is an Engine.IO server; mount it on any path.
type Server struct {
	opts    Options
	handler http.Handler // ServeHTTP behind CORS
	sched   *scheduler
	metrics engineMetrics
	// upgrades lists what a polling session may upgrade to (the open packet's "upgrades").
	upgrades string

	mu       sync.RWMutex
	sessions map[string]*Socket
	closed   bool
}

// NewServer builds a server from opts; it starts the one goroutine that drives every timeout.
func NewServer(opts Options) *Server {
	if opts.PingInterval <= 0 {
		opts.PingInterval = 25 * time.Second
	}
	if opts.PingTimeout <= 0 {
		opts.PingTimeout = 20 * time.Second
	}
	if opts.UpgradeTimeout <= 0 {
		opts.UpgradeTimeout = 10 * time.Second
	}
	if opts.MaxHTTPBufferSize <= 0 {
		opts.MaxHTTPBufferSize = 1e6
	}
	if len(opts.Transports) == 0 {
		opts.Transports = []string{"polling", "websocket"}
	}
	if opts.MaxQueueBytes <= 0 {
		opts.MaxQueueBytes = 1 << 20
	}
	srv := &Server{opts: opts, sessions: make(map[string]*Socket), metrics: newEngineMetrics(opts.Metrics)}
	srv.upgrades = "[]"
	if !opts.DisableUpgrades && slices.Contains(opts.Transports, "websocket") {
		srv.upgrades = `["websocket"]`
	}
	srv.sched = newScheduler(func(t *timer, kind timerKind, gen uint64) { t.s.onTimer(t, kind, gen) })
	// The reference applies the cors middleware to every request, errors included: Node's
	// "cors" package; rs/cors answers the same way (preflight 204, the origin or "*").
	co := cors.Options{
		AllowedMethods: []string{"GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"},
		AllowedHeaders: []string{"*"},
	}
	if len(opts.CORS.AllowOrigins) == 0 {
		co.AllowedOrigins = []string{"*"}
	} else {
		co.AllowedOrigins = opts.CORS.AllowOrigins
		co.AllowCredentials = true
	}
	srv.handler = cors.New(co).Handler(http.HandlerFunc(srv.serve))
	return srv
}

// ServeHTTP answers Engine.IO requests on whatever path the server is mounted.
func (srv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { srv.handler.ServeHTTP(w, r) }

// Close closes every socket (a pending poll gets the close packet, a websocket a close frame)
// and stops the scheduler. Handshakes after Close are refused.
func (srv *Server) Close() {
	srv.mu.Lock()
	if srv.closed {
		srv.mu.Unlock()
		return
	}
	srv.closed = true
	all := make([]*Socket, 0, len(srv.sessions))
	for _, s := range srv.sessions {
		all = append(all, s)
	}
	srv.mu.Unlock()
	for _, s := range all {
		s.end(ReasonForcedClose, endClosePacket)
	}
	srv.sched.close()
}

func (srv *Server) lookup(sid string) *Socket {
	srv.mu.RLock()
	s := srv.sessions[sid]
	srv.mu.RUnlock()
	return s
}

func (srv *Server) remove(s *Socket) {
	srv.mu.Lock()
	if srv.sessions[s.id] == s {
		delete(srv.sessions, s.id)
	}
	srv.mu.Unlock()
}

func (srv *Server) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.RawQuery
	transport := queryGet(q, "transport")
	// A polling request that carries upgrade headers is still a polling request.
	upgrade := transport == "websocket" && isUpgrade(r)
	if !slices.Contains(srv.opts.Transports, transport) || (transport != "polling" && transport != "websocket") {
		abort(w, upgrade, codeUnknownTransport, "")
		return
	}
	if upgrade && !srv.originAllowed(r) {
		abort(w, upgrade, codeForbidden, "")
		return
	}
	if sid := queryGet(q, "sid"); sid != "" {
		s := srv.lookup(sid)
		if s == nil {
			abort(w, upgrade, codeUnknownSID, "")
			return
		}
		if !upgrade && transport == "polling" && r.Method == http.MethodGet && s.answerTombstone(w) {
			return
		}
		s.expireIfOverdue()
		s.mu.Lock()
		state, current := s.state, s.transport
		s.mu.Unlock()
		if state == stClosed {
			abort(w, upgrade, codeUnknownSID, "")
			return
		}
		if !upgrade && current.String() != transport {
			abort(w, upgrade, codeBadRequest, "")
			return
		}
		switch {
		case upgrade:
			srv.serveUpgrade(w, r, s)
		case r.Method == http.MethodGet:
			srv.servePoll(w, r, s)
		case r.Method == http.MethodPost:
			srv.servePost(w, r, s)
		default:
			w.WriteHeader(http.StatusInternalServerError) // as the reference's polling transport
		}
		return
	}
	if r.Method != http.MethodGet {
		abort(w, upgrade, codeBadHandshakeMethod, "")
		return
	}
	if transport == "websocket" && !upgrade {
		abort(w, upgrade, codeBadRequest, "")
		return
	}
	if srv.opts.AllowRequest != nil {
		if err := srv.opts.AllowRequest(r); err != nil {
			srv.metrics.handshakesRefused.Inc()
			abort(w, upgrade, codeForbidden, err.Error())
			return
		}
	}
	protocol := 3 // the reference takes anything but "4" as the 3rd revision
	if queryGet(q, "EIO") == "4" {
		protocol = 4
	}
	if protocol == 3 && !srv.opts.AllowEIO3 {
		srv.metrics.handshakesRefused.Inc()
		abort(w, upgrade, codeUnsupportedProtocol, "")
		return
	}
	srv.handshake(w, r, protocol, upgrade)
}

func (srv *Server) handshake(w http.ResponseWriter, r *http.Request, protocol int, upgrade bool) {
	s := &Socket{srv: srv, id: newSessionID(), protocol: protocol, remoteAddr: r.RemoteAddr}
	s.hb = timer{index: -1, s: s}
	s.b64 = queryGet(r.URL.RawQuery, "b64") != ""
	if upgrade {
		s.transport = tpWebSocket
	}
	upgrades := srv.upgrades
	if upgrade {
		upgrades = "[]"
	}
	open := `{"sid":"` + s.id + `","upgrades":` + upgrades +
		`,"pingInterval":` + strconv.FormatInt(srv.opts.PingInterval.Milliseconds(), 10) +
		`,"pingTimeout":` + strconv.FormatInt(srv.opts.PingTimeout.Milliseconds(), 10) +
		`,"maxPayload":` + strconv.FormatInt(srv.opts.MaxHTTPBufferSize, 10) + `}`
	s.queue = append(s.queue, outPacket{typ: pOpen, data: open})

	var c *wsConn
	if upgrade {
		var ok bool
		if c, ok = srv.accept(w, r, s.id); !ok {
			return
		}
		s.ws = c
	} else if srv.opts.CookieName != "" {
		w.Header().Add("Set-Cookie", srv.cookie(s.id))
	}

	srv.mu.Lock()
	if srv.closed {
		srv.mu.Unlock()
		if c != nil {
			c.conn.Close()
		} else {
			abort(w, false, codeBadRequest, "")
		}
		return
	}
	srv.sessions[s.id] = s
	srv.mu.Unlock()
	srv.metrics.handshakesOK.Inc()
	srv.metrics.socketsOpen.Inc()

	s.mu.Lock()
	if protocol == 3 {
		srv.sched.arm(&s.hb, tPingTimeout, srv.opts.PingInterval+srv.opts.PingTimeout)
	} else {
		srv.sched.arm(&s.hb, tPing, srv.opts.PingInterval)
	}
	s.mu.Unlock()

	if srv.opts.OnConnection != nil {
		srv.opts.OnConnection(s, r)
	}
	if c != nil {
		s.mu.Lock()
		s.kickLocked()
		s.mu.Unlock()
		go s.readLoop(c) // ServeHTTP returns: the request and the HTTP server's buffers go
		return
	}
	srv.servePoll(w, r, s)
}

func (srv *Server) cookie(sid string) string {
	return srv.opts.CookieName + "=" + sid + "; Path=/; HttpOnly; SameSite=Lax"
}

// originAllowed applies the CORS origins to websocket upgrades, which CORS does not cover.
func (srv *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if len(srv.opts.CORS.AllowOrigins) == 0 || origin == "" {
		return true
	}
	for _, o := range srv.opts.CORS.AllowOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// abort answers a refused request as the reference does: JSON {"code","message"} with 400
// (403 for Forbidden), or for a websocket upgrade a 400 whose body is the message.
func abort(w http.ResponseWriter, upgrade bool, code int, message string) {
	if message == "" {
		message = errorMessages[code]
	}
	h := w.Header()
	if upgrade {
		h.Set("Connection", "close")
		h.Set("Content-Type", "text/html")
		h.Set("Content-Length", strconv.Itoa(len(message)))
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(message))
		return
	}
	status := http.StatusBadRequest
	if code == codeForbidden {
		status = http.StatusForbidden
	}
	msg, _ := json.Marshal(message)
	body := `{"code":` + strconv.Itoa(code) + `,"message":` + string(msg) + `}`
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// isUpgrade says whether the request asks for a websocket (the reference's "upgrade" event).
func isUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet && headerHasToken(r.Header, "Connection", "upgrade") &&
		strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// queryGet returns the first value of key in a raw query without building a url.Values map.
func queryGet(raw, key string) string {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(pair, "=")
		if k != key {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			if u, err := url.QueryUnescape(v); err == nil {
				return u
			}
		}
		return v
	}
	return ""
}

// newSessionID makes a 20-character URL-safe id from 15 random bytes, the reference's shape.
func newSessionID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return base64.URLEncoding.EncodeToString(b[:])
}
