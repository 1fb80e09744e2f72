package main

import (
	"context"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/parley-chat/parley/engine/eio"
)

// runEIO serves Parley's Engine.IO server as the socketio/engine.io-protocol test suite's
// README describes its reference: path /engine.io/, pingInterval 300 ms, pingTimeout 200 ms,
// maxPayload 1e6, cors origin "*", and every message echoed back.
func runEIO(addr string) error {
	srv := eio.NewServer(eio.Options{
		PingInterval:      300 * time.Millisecond,
		PingTimeout:       200 * time.Millisecond,
		MaxHTTPBufferSize: 1e6,
		OnConnection: func(s *eio.Socket, _ *http.Request) {
			s.SetHandler(echo{s})
		},
	})
	defer srv.Close()
	mux := http.NewServeMux()
	mux.Handle("/engine.io/", srv)
	log.Printf("conformance: Engine.IO on http://%s/engine.io/", addr)
	return serveEIOUntilSignal(addr, mux)
}

// echo sends every message back as it came (text or binary).
type echo struct{ s *eio.Socket }

func (e echo) OnMessage(data []byte, binary bool) {
	b := append([]byte(nil), data...) // data is only valid during the call
	if binary {
		_ = e.s.Send(eio.BinaryMessage(b))
	} else {
		_ = e.s.Send(eio.TextMessage(b))
	}
}

// OnClose logs why each session ended, to tell a failing test's cause from the server's side.
func (e echo) OnClose(reason string) {
	log.Printf("eio: session %s (%s) closed: %s", e.s.ID(), e.s.Transport(), reason)
}

// serveEIOUntilSignal serves h on addr until SIGINT or SIGTERM.
func serveEIOUntilSignal(addr string, h http.Handler) error {
	hs := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return hs.Shutdown(shutdown)
	}
}
