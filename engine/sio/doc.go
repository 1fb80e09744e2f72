// Package sio is Parley's Socket.IO server: protocol 5 (socket.io-client
// 3.x and 4.x over Engine.IO 4) and protocol 4 (socket.io-client 2.x over
// Engine.IO 3), on top of engine/eio.
//
// A connection (one Engine.IO socket) is a client; each namespace it joins
// is a Socket. Rooms and broadcasts go through an Adapter, the local
// in-memory one by default, so a cluster adapter (Redis) can replace it.
//
// What makes it fast: a broadcast is encoded once into eio.Message values
// that every recipient shares (Engine.IO frames them once per dialect);
// nothing runs per socket but its transport; a socket is registered, in
// its rooms, before the client hears CONNECT, and whatever is broadcast to
// it meanwhile follows the CONNECT in order.
//
// Conformance: the official socketio/socket.io-protocol suite passes
// against scripts/conformance -mode sio.
package sio
