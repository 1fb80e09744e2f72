package eio

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/gobwas/ws"
)

// ErrClosed is returned by Send once the socket is closing or closed.
var ErrClosed = errors.New("eio: socket closed")

// ErrQueueOverflow is returned by the Send that pushed the socket's outbound queue past
// MaxQueueBytes; the socket is closed with reason "queue overflow".
var ErrQueueOverflow = errors.New("eio: queue overflow")

// Close reasons, as the reference server names them.
const (
	ReasonTransportClose = "transport close"
	ReasonPingTimeout    = "ping timeout"
	ReasonForcedClose    = "forced close"
	ReasonParseError     = "parse error"
	ReasonTransportError = "transport error"
	ReasonQueueOverflow  = "queue overflow"
)

type sockState uint8

const (
	stOpen    sockState = iota
	stClosing           // Close was called: the queue drains, then the close packet
	stClosed
)

type transportKind uint8

const (
	tpPolling transportKind = iota
	tpWebSocket
)

func (t transportKind) String() string {
	if t == tpWebSocket {
		return "websocket"
	}
	return "polling"
}

// endHow says what the transport gets when a socket ends.
type endHow uint8

const (
	endClosePacket endHow = iota // a pending poll gets "1"; a websocket gets a close frame
	endNoop                      // a pending poll gets "6" (the client closed the session itself)
	endDrop                      // the connection is cut; a pending poll gets "6"
)

// pollFinal is how the pending long-poll GET of an ended session is answered.
type pollFinal uint8

const (
	finalNone       pollFinal = iota
	finalClose                // "1"
	finalNoop                 // "6"
	finalBadRequest           // 400 {"code":3,"message":"Bad request"}: the session upgraded under it
)

// outPacket is one queued outbound packet: a shared Message, or a small control packet.
type outPacket struct {
	msg  *Message
	typ  byte   // control packet type when msg is nil (or wsPongFrame)
	data string // control packet data ("probe", the open packet's JSON)
}

const wsPongFrame = 'P' // a websocket-level pong frame answering the client's ping frame

// Socket is one Engine.IO session.
type Socket struct {
	srv        *Server
	id         string
	protocol   int
	remoteAddr string
	b64        bool // protocol 3 polling client without binary support

	hb timer // the heartbeat, or the close/tombstone deadline once the socket ends

	deliverMu sync.Mutex // one delivery at a time, in order, whichever transport carries it

	mu         sync.Mutex
	state      sockState
	transport  transportKind
	handler    Handler
	queue      []outPacket
	spare      []outPacket
	queueBytes int // queued and in flight
	inFlight   int // taken by a writer, not yet written
	reason     string
	tombstone  bool // ended by the client's close packet with no GET to answer: the racing GET gets a noop

	// polling
	pollPending bool
	pollCh      chan struct{}
	final       pollFinal
	posting     bool

	// websocket
	ws        *wsConn
	writing   bool // a writer goroutine is running
	wsClose   bool // the writer ends the connection with a close frame once the queue is written
	closeCode ws.StatusCode
	readDone  bool // the read loop ended: the writer closes the connection when it is done
	upg       *upgrade
}

// upgrade is a websocket probing to take over a polling session.
type upgrade struct {
	conn    *wsConn
	probed  bool
	check   timer
	timeout timer
}

// ID is the session id.
func (s *Socket) ID() string { return s.id }

// Protocol is the Engine.IO protocol revision: 3 or 4.
func (s *Socket) Protocol() int { return s.protocol }

// RemoteAddr is the handshake request's remote address.
func (s *Socket) RemoteAddr() string { return s.remoteAddr }

// Transport is "polling" or "websocket".
func (s *Socket) Transport() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.transport.String()
}

// SetHandler sets who receives the socket's messages and its close. OnConnection calls it.
func (s *Socket) SetHandler(h Handler) {
	s.mu.Lock()
	s.handler = h
	s.mu.Unlock()
}

// Send enqueues messages atomically (all or none) and never blocks. Past MaxQueueBytes the
// socket is closed with reason "queue overflow".
func (s *Socket) Send(msgs ...*Message) error {
	cost := 0
	for _, m := range msgs {
		cost += m.queueCost()
	}
	s.mu.Lock()
	if s.state != stOpen {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.queueBytes+cost > s.srv.opts.MaxQueueBytes {
		s.srv.metrics.queueOverflows.Inc()
		s.endUnlock(ReasonQueueOverflow, endDrop)
		return ErrQueueOverflow
	}
	for _, m := range msgs {
		s.queue = append(s.queue, outPacket{msg: m})
	}
	s.queueBytes += cost
	s.kickLocked()
	s.mu.Unlock()
	return nil
}

// sendControlLocked queues a control packet; control packets are tiny and never count
// against the bound.
func (s *Socket) sendControlLocked(typ byte, data string) {
	s.queue = append(s.queue, outPacket{typ: typ, data: data})
	s.kickLocked()
}

// kickLocked gets what is queued moving: it wakes the pending poll, or starts the websocket
// writer (which exists only while there is something to write).
func (s *Socket) kickLocked() {
	switch s.transport {
	case tpPolling:
		if s.pollPending {
			select {
			case s.pollCh <- struct{}{}:
			default:
			}
		}
	case tpWebSocket:
		if !s.writing && s.ws != nil {
			s.writing = true
			go s.writeLoop(s.ws)
		}
	}
}

// Close closes the socket gracefully: what is queued is written, then the close packet (a
// close frame on websocket), then the transport closes. OnClose gets "forced close".
func (s *Socket) Close() {
	s.mu.Lock()
	if s.state != stOpen {
		s.mu.Unlock()
		return
	}
	s.state = stClosing
	s.abortUpgradeLocked()
	if s.transport == tpWebSocket {
		s.wsClose = true
	}
	s.kickLocked()
	s.srv.sched.arm(&s.hb, tCloseTimeout, closeTimeout)
	s.mu.Unlock()
}

// closeTimeout bounds a graceful close: the GET that carries a polling socket's close packet
// (the reference's closeTimeout), or a websocket writer stuck on a client that stopped reading.
const closeTimeout = 30 * time.Second

// Drop closes the transport at once, with no close packet. OnClose gets "forced close".
func (s *Socket) Drop() { s.end(ReasonForcedClose, endDrop) }

// end closes the socket now (reason for OnClose; how for the transport).
func (s *Socket) end(reason string, how endHow) {
	s.mu.Lock()
	s.endUnlock(reason, how)
}

// endUnlock ends the socket, releases s.mu (held by the caller) and runs finish if it ended it.
func (s *Socket) endUnlock(reason string, how endHow) {
	ok := s.endLocked(reason, how)
	s.mu.Unlock()
	if ok {
		s.finish()
	}
}

// endLocked marks the socket closed and tells its transports; the caller runs finish after
// unlocking when it returns true.
func (s *Socket) endLocked(reason string, how endHow) bool {
	if s.state == stClosed {
		return false
	}
	s.state = stClosed
	s.reason = reason
	clear(s.queue)
	s.queue, s.spare, s.queueBytes, s.inFlight = nil, nil, 0, 0
	s.abortUpgradeLocked()
	s.srv.sched.disarm(&s.hb)
	switch s.transport {
	case tpPolling:
		if s.pollPending {
			s.final = finalNoop
			if how == endClosePacket {
				s.final = finalClose
			}
			select {
			case s.pollCh <- struct{}{}:
			default:
			}
		} else if how == endNoop {
			// The client closed over POST with no GET waiting; a GET it sent at the same time
			// (and that lost the race) is answered with the noop it would have had.
			s.tombstone = true
			s.srv.sched.arm(&s.hb, tTombstone, tombstoneTTL)
		}
	case tpWebSocket:
		if how == endDrop || s.ws == nil {
			if s.ws != nil {
				s.ws.conn.Close()
			}
		} else {
			s.wsClose = true
			// A writer stuck on a client that stopped reading gives up after the grace.
			_ = s.ws.conn.SetWriteDeadline(time.Now().Add(wsCloseGrace))
			if !s.writing {
				s.writing = true
				go s.writeLoop(s.ws)
			}
		}
	}
	return true
}

// tombstoneTTL is how long a session closed by the client's POST keeps answering one racing GET.
const tombstoneTTL = 2 * time.Second

// finish runs after a socket ended: the session leaves the server and the handler hears
// OnClose exactly once. OnClose runs on a goroutine of its own, so it is never inside a Send,
// Close or Drop the handler made (which may hold the handler's own locks) nor on the
// scheduler's goroutine, and it waits for the delivery under way, if any.
func (s *Socket) finish() {
	s.mu.Lock()
	keep := s.tombstone
	s.mu.Unlock()
	if !keep {
		s.srv.remove(s)
	}
	s.srv.metrics.socketsOpen.Dec()
	go s.notifyClose()
}

func (s *Socket) notifyClose() {
	s.deliverMu.Lock()
	defer s.deliverMu.Unlock()
	s.mu.Lock()
	h, reason := s.handler, s.reason
	s.mu.Unlock()
	if h != nil {
		h.OnClose(reason)
	}
}

// deliver hands one message to the handler; deliveries never overlap, and none follows the
// socket's end (OnClose takes deliverMu too).
func (s *Socket) deliver(data []byte, binary bool) {
	s.deliverMu.Lock()
	defer s.deliverMu.Unlock()
	s.mu.Lock()
	h := s.handler
	open := s.state == stOpen
	s.mu.Unlock()
	if open && h != nil {
		h.OnMessage(data, binary)
	}
}

// onPacket handles one packet the client sent on the socket's current transport.
func (s *Socket) onPacket(p packet) {
	switch p.typ {
	case pMessage:
		s.deliver(p.data, p.binary)
		return
	case pPing, pPong:
	default:
		return // open, upgrade and noop mean nothing here; close is the transport's business
	}
	s.mu.Lock()
	if s.state != stOpen {
		s.mu.Unlock()
		return
	}
	ok := false
	if (p.typ == pPing) != (s.protocol == 3) {
		// protocol 4: the server pings; protocol 3: the client does. The wrong direction is
		// the reference's "invalid heartbeat direction".
		ok = s.endLocked(ReasonTransportError, endClosePacket)
	} else if p.typ == pPing {
		s.srv.sched.arm(&s.hb, tPingTimeout, s.srv.opts.PingInterval+s.srv.opts.PingTimeout)
		s.sendControlLocked(pPong, string(p.data))
	} else {
		s.srv.sched.arm(&s.hb, tPing, s.srv.opts.PingInterval)
	}
	s.mu.Unlock()
	if ok {
		s.finish()
	}
}

// onTimer runs on the scheduler's goroutine.
func (s *Socket) onTimer(t *timer, kind timerKind, gen uint64) {
	s.mu.Lock()
	if !s.srv.sched.current(t, gen) {
		s.mu.Unlock()
		return
	}
	ok := false
	switch kind {
	case tPing:
		if s.state == stOpen {
			s.sendControlLocked(pPing, "")
			s.srv.sched.armAt(&s.hb, tPongTimeout, t.when+int64(s.srv.opts.PingTimeout))
		}
	case tPongTimeout, tPingTimeout:
		ok = s.endLocked(ReasonPingTimeout, endClosePacket)
	case tCloseTimeout:
		ok = s.endLocked(ReasonForcedClose, endDrop)
	case tTombstone:
		s.tombstone = false
		s.mu.Unlock()
		s.srv.remove(s)
		return
	case tUpgradeCheck:
		if u := s.upg; u != nil && s.pollPending && s.final == finalNone {
			s.final = finalNoop
			s.kickLocked()
		}
		if u := s.upg; u != nil {
			s.srv.sched.arm(&u.check, tUpgradeCheck, upgradeCheckInterval)
		}
	case tUpgradeTimeout:
		s.abortUpgradeLocked()
	}
	s.mu.Unlock()
	if ok {
		s.finish()
	}
}

// expireIfOverdue ends the socket if its heartbeat deadline has passed, so that a request
// arriving after the deadline finds the session closed even if the scheduler is late.
func (s *Socket) expireIfOverdue() {
	s.mu.Lock()
	if s.state != stClosed && (s.srv.sched.overdue(&s.hb, tPongTimeout) || s.srv.sched.overdue(&s.hb, tPingTimeout)) {
		s.endUnlock(ReasonPingTimeout, endClosePacket)
		return
	}
	s.mu.Unlock()
}

// upgradeCheckInterval is how often a held poll is released with a noop during an upgrade.
const upgradeCheckInterval = 100 * time.Millisecond

func (s *Socket) abortUpgradeLocked() {
	u := s.upg
	if u == nil {
		return
	}
	s.upg = nil
	s.srv.sched.disarm(&u.check)
	s.srv.sched.disarm(&u.timeout)
	if u.conn == nil {
		return // its handshake is still under way; serveUpgrade sees the upgrade gone
	}
	// The reference closes the abandoned websocket with a close frame. net.Conn serialises
	// whole Writes, so this cannot interleave with the probe's own answer.
	go func(c net.Conn) {
		_ = c.SetWriteDeadline(time.Now().Add(wsCloseGrace))
		_, _ = c.Write(ws.CompiledCloseNormalClosure)
		c.Close()
	}(u.conn.conn)
}

// takeQueueLocked hands the queued packets to a writer. Their bytes still count against the
// bound until the writer has written them (returnQueueLocked), so a client that stopped
// reading holds at most MaxQueueBytes, queued and in flight together.
func (s *Socket) takeQueueLocked() (q []outPacket, cost int) {
	q = s.queue
	s.queue = s.spare[:0]
	s.spare = nil
	cost = s.queueBytes - s.inFlight
	s.inFlight += cost
	return q, cost
}

// returnQueueLocked releases a written queue's bytes and keeps its array for reuse unless it
// grew large.
func (s *Socket) returnQueueLocked(q []outPacket, cost int) {
	clear(q)
	if s.state == stClosed {
		return
	}
	s.queueBytes -= cost
	s.inFlight -= cost
	if cap(q) <= 64 {
		s.spare = q[:0]
	}
}
