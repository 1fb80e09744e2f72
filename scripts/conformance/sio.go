package main

import (
	"log"
	"net/http"
	"time"

	"github.com/parley-chat/parley/engine/eio"
	"github.com/parley-chat/parley/engine/sio"
)

// runSIO serves the configuration socketio/socket.io-protocol's README
// gives for its test suite: ping 300/200 ms, maxPayload 1e6, connect
// timeout 1 s, CORS "*", the main namespace echoing events back and a
// /custom namespace, both emitting "auth" with the handshake's auth.
func runSIO(addr string) error {
	srv := newSIOServer()
	defer srv.Close()
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	log.Printf("conformance: Socket.IO on http://%s/socket.io/", addr)
	return http.ListenAndServe(addr, mux)
}

func newSIOServer() *sio.Server {
	srv := sio.NewServer(sio.Options{
		Engine: eio.Options{
			PingInterval:      300 * time.Millisecond,
			PingTimeout:       200 * time.Millisecond,
			MaxHTTPBufferSize: 1e6,
			AllowEIO3:         true,
		},
		ConnectTimeout: time.Second,
	})
	srv.Sockets().OnConnection(func(s *sio.Socket) {
		_ = s.Emit("auth", s.Auth())
		s.OnEvent(func(event string, args []any, ack sio.AckFunc) {
			switch event {
			case "message":
				_ = s.Emit("message-back", args...)
			case "message-with-ack":
				if ack != nil {
					ack(args...)
				}
			}
		})
	})
	srv.Of("/custom").OnConnection(func(s *sio.Socket) {
		_ = s.Emit("auth", s.Auth())
	})
	return srv
}
