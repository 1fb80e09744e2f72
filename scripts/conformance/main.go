// Command conformance serves Parley's own engine the way the official
// protocol test suites expect their reference server, so anyone can run
// those suites against it:
//
//	go run ./scripts/conformance -mode sio -addr 127.0.0.1:3000   # socketio/socket.io-protocol
//	go run ./scripts/conformance -mode eio -addr 127.0.0.1:3000   # socketio/engine.io-protocol
//
// -mode sio is built in sio.go (runSIO), -mode eio in eio.go (runEIO).
//
// To run a suite: get the suite's repository (github.com/socketio/socket.io-protocol
// or engine.io-protocol) outside this one, `npm ci` in its test-suite/ directory,
// start this command, then `npm test` there. The suites connect to
// localhost:3000; on a machine where that port is taken, serve on another
// and point the suite's URL constant at it in that scratch copy.
//
// Known: the socket.io-protocol suite reads the CONNECT answer and the
// "auth" event that follows it with two one-shot listeners, and loses the
// second frame when both arrive in one TCP read (see authDelay in sio.go).
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	mode := flag.String("mode", "sio", "which suite to serve: eio (Engine.IO, path /engine.io/) or sio (Socket.IO, path /socket.io/)")
	addr := flag.String("addr", "127.0.0.1:3000", "listen address")
	flag.Parse()
	var err error
	switch *mode {
	case "eio":
		err = runEIO(*addr)
	case "sio":
		err = runSIO(*addr)
	default:
		err = fmt.Errorf("unknown -mode %q: want eio or sio", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(1)
	}
}
