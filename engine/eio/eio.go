package eio

import (
	"errors"
	"net/http"
	"time"
)

// Options configures a Server. Zero values take the reference server's defaults.
type Options struct {
	PingInterval, PingTimeout, UpgradeTimeout time.Duration // defaults 25s, 20s, 10s
	MaxHTTPBufferSize                         int64         // default 1e6
	AllowEIO3                                 bool          // Engine.IO 3 (socket.io-client 2.x)
	Transports                                []string      // default {"polling","websocket"}
	DisableUpgrades                           bool          // the reference's allowUpgrades=false
	CORS                                      CORS
	MaxQueueBytes                             int    // per-socket outbound bound; default 4 MiB
	CookieName                                string // "" = no io cookie
	AllowRequest                              func(r *http.Request) error
	OnConnection                              func(s *Socket, r *http.Request)
	Metrics                                   *Metrics
}

// CORS mirrors the reference server's cors option.
type CORS struct {
	AllowOrigins []string // empty: "*", no credentials; else those origins, with credentials
}

// Handler receives one socket's messages and its close.
type Handler interface {
	OnMessage(data []byte, binary bool)
	OnClose(reason string)
}

// ErrClosed is returned by Send on a closed socket.
var ErrClosed = errors.New("eio: socket closed")

// Server is an Engine.IO server; mount it on any path.
type Server struct {
	opts Options
}

// NewServer builds a server from opts.
func NewServer(opts Options) *Server { return &Server{opts: opts} }

// ServeHTTP answers Engine.IO requests.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "not implemented", http.StatusNotImplemented)
}

// Close closes every socket and stops the scheduler.
func (s *Server) Close() {}

// Socket is one Engine.IO session.
type Socket struct{}

func (s *Socket) ID() string                  { return "" }
func (s *Socket) Protocol() int               { return 4 }
func (s *Socket) Transport() string           { return "polling" }
func (s *Socket) RemoteAddr() string          { return "" }
func (s *Socket) SetHandler(h Handler)        {}
func (s *Socket) Send(msgs ...*Message) error { return ErrClosed }
func (s *Socket) Close()                      {}
func (s *Socket) Drop()                       {}

// Message is one immutable Engine.IO "message" payload shared by every recipient.
type Message struct {
	data   []byte
	binary bool
}

func TextMessage(b []byte) *Message   { return &Message{data: b} }
func BinaryMessage(b []byte) *Message { return &Message{data: b, binary: true} }
