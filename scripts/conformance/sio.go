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
// timeout 1 s, CORS "*" (no allowEIO3), the main namespace echoing events
// back and a /custom namespace, both emitting "auth" with the handshake's
// auth.
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
		},
		ConnectTimeout: time.Second,
	})
	srv.Sockets().OnConnection(func(s *sio.Socket) {
		emitAuth(s)
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
	srv.Of("/custom").OnConnection(emitAuth)
	return srv
}

// authDelay separates the "auth" event from the CONNECT answer on the
// wire. The suite reads them with two one-shot listeners, the second added
// only after the first resolved (a promise continuation); when both frames
// arrive in one TCP read, ws dispatches both before that, and the second is
// lost. Node writes every packet with its own syscall, so they rarely share
// a read; Parley's engine coalesces what is queued into one write by
// design, so without the delay they always would. Real clients read any
// number of frames per read.
const authDelay = 20 * time.Millisecond

func emitAuth(s *sio.Socket) {
	auth := s.Auth()
	time.AfterFunc(authDelay, func() { _ = s.Emit("auth", auth) })
}
