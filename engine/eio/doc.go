// Package eio is Parley's Engine.IO server: protocol 4, and protocol 3 for socket.io-client
// 2.x (Options.AllowEIO3). It answers as the reference Node server (engine.io 6.x) does —
// handshake errors byte for byte, the open packet, payload framing of both protocols, the
// upgrade probe, heartbeats, close and upgrade races — and passes the official
// socketio/engine.io-protocol test suite (see scripts/conformance).
//
// # API notes
//
//   - Options.AllowUpgrades (bool, "default true" cannot be told from unset) is
//     Options.DisableUpgrades.
//   - Options.CORS is CORS{AllowOrigins []string}.
//   - Metrics: NewMetrics() builds the collectors; the caller registers Metrics.Collectors().
//   - Send returns ErrClosed once the socket is closing or closed, and ErrQueueOverflow from the
//     Send that overflowed the queue (the socket is then closed).
//   - Added: Message.Data() and Message.IsBinary(); the Reason* constants for OnClose.
//   - OnClose is asynchronous: it has not necessarily run when Close or Drop returns.
//   - Drop during OnConnection on polling: the handshake GET is answered 400 "Session ID
//     unknown" (there is no open session to report); Close during OnConnection sends the open
//     packet and then the close packet.
//
// # Shape
//
// A Socket has one bounded outbound queue (Options.MaxQueueBytes; past it the socket is closed
// with reason "queue overflow", counted in Metrics, and nobody else waits). Send appends shared
// *Message pointers and never blocks. A Message caches its encoded frame per dialect
// (websocket 4, websocket 3, polling 4, polling 3 text, polling 3 binary), so a broadcast to N
// sockets is encoded once per dialect and each delivery costs a queue slot.
//
// On websocket a writer goroutine exists only while something is queued: it takes everything
// pending, copies the frames into one pooled buffer and writes it with one conn.Write. On
// polling the pending GET takes everything queued as one payload. An idle websocket holds one
// read goroutine blocked on a 2-byte frame header; payloads are read into pooled buffers that go
// back once the message is handled. After the upgrade handshake the *http.Request and the HTTP
// server's bufio reader and writer are dropped (the handler returns; the read loop runs on a
// fresh goroutine). Heartbeats, upgrade and close deadlines of every socket are driven by one
// goroutine over a min-heap with one time.Timer (sched.go); a socket embeds its timer.
//
// Messages are delivered one at a time per socket, in order, whichever transport carried
// them, and OnClose comes exactly once, after the last OnMessage. OnClose runs on a goroutine
// of its own: never inside a Send, Close or Drop the handler made (a Send that overflows the
// queue may be called under the caller's locks), never on the scheduler's goroutine.
//
// # Where it differs from the reference, on purpose
//
//   - A POST whose body is not a valid payload is answered 400 (the reference destroys the
//     connection); the session closes with "parse error" either way.
//   - A long-poll GET that arrives just after the client's own close POST (the two race on
//     separate connections) gets the noop it would have had, once, for 2 s; the reference
//     answers it 400 or noop depending on which request wins the race.
//   - A GET still waiting when the upgrade completes is answered 400 (the upgrade happened
//     before it, from the client's point of view); the reference answers it "1" when it loses
//     that race. Until then a held GET is released with a noop every 100 ms, as the reference does.
//   - A close packet ("1") on a websocket closes the session ("transport close"); the reference
//     ignores it there and lets the heartbeat end the session.
//   - A request that arrives after the heartbeat deadline finds the session closed even if the
//     scheduler has not fired yet.
//   - Invalid base64 in a payload is a parse error (Node's Buffer.from ignores bad characters).
//
// # WebSocket library: github.com/gobwas/ws
//
// Measured before choosing (one process, 3,000 idle server-side connections, a read loop each;
// 100-byte text frames over loopback), with the versions the module proxy serves:
//
//	library                 heap/conn  stack/conn  write of one frame
//	gobwas/ws v1.5.0           1.1 KB      4.1 KB   4.7 µs (header+payload, one write)
//	lxzan/gws v1.8.9           6.7 KB      2.6 KB   4.3 µs, 1 alloc
//	coder/websocket v1.8.15   11.5 KB      4.1 KB   5.9 µs
//
// The write cost is the syscall in every case, so what matters is writing several frames per
// syscall and holding little per idle connection. gobwas/ws is the low-level one: it does the
// upgrade handshake and gives back the net.Conn, keeping no bufio reader or writer, no per-conn
// goroutine and no per-conn buffers, and it lets the engine put many frames in one buffer for
// one write. coder/websocket keeps a bufio reader and writer per connection (and one write per
// message); gws keeps a read buffer per connection. Measured for this engine with its read
// loop (TestIdleMemory, PARLEY_EIO_MEMTEST=3000): about 1.3 KB heap and 2 KB stack per idle
// websocket socket, before the Socket.IO layer's own state.
package eio
