package eio

import (
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// wsConn is one hijacked websocket connection. It keeps no bufio reader or writer: frames are
// read straight from the connection into pooled buffers, and written from pooled buffers.
type wsConn struct {
	conn net.Conn
	pre  []byte // bytes the HTTP server had buffered past the upgrade request
	hdr  [14]byte
}

func (c *wsConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		if len(c.pre) == 0 {
			c.pre = nil
		}
		return n, nil
	}
	return c.conn.Read(p)
}

// wsCloseGrace bounds the closing handshake: after it the connection is cut.
const wsCloseGrace = 2 * time.Second

// accept completes the websocket handshake and drops the HTTP server's buffers.
func (srv *Server) accept(w http.ResponseWriter, r *http.Request, sid string) (*wsConn, bool) {
	var u ws.HTTPUpgrader
	if srv.opts.CookieName != "" && sid != "" {
		u.Header = http.Header{"Set-Cookie": {srv.cookie(sid)}}
	}
	conn, rw, _, err := u.Upgrade(r, w)
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		return nil, false
	}
	c := &wsConn{conn: conn}
	if n := rw.Reader.Buffered(); n > 0 {
		b, _ := rw.Reader.Peek(n)
		c.pre = append([]byte(nil), b...)
	}
	return c, true
}

// serveUpgrade takes a websocket that wants to take over polling session s. The session is
// marked as upgrading before the 101 goes out, so a second websocket for it that the client
// opens right after is the one refused, whatever order the server happens to run them in.
func (srv *Server) serveUpgrade(w http.ResponseWriter, r *http.Request, s *Socket) {
	s.mu.Lock()
	if s.state != stOpen || s.transport != tpPolling || s.upg != nil || srv.opts.DisableUpgrades {
		s.mu.Unlock()
		// The reference accepts the websocket and closes it at once.
		if c, ok := srv.accept(w, r, ""); ok {
			_, _ = c.conn.Write(ws.CompiledCloseNormalClosure)
			c.conn.Close()
		}
		return
	}
	u := &upgrade{}
	u.check = timer{index: -1, s: s}
	u.timeout = timer{index: -1, s: s}
	s.upg = u
	srv.sched.arm(&u.timeout, tUpgradeTimeout, srv.opts.UpgradeTimeout)
	s.mu.Unlock()

	c, ok := srv.accept(w, r, "")
	s.mu.Lock()
	if !ok || s.upg != u { // the handshake failed, or the upgrade was abandoned meanwhile
		if s.upg == u {
			s.abortUpgradeLocked()
		}
		s.mu.Unlock()
		if c != nil {
			c.conn.Close()
		}
		return
	}
	u.conn = c
	s.mu.Unlock()
	go s.readLoop(c)
}

// readLoop reads frames until the connection ends. An idle connection waits only for the
// 2 bytes that start a frame, in this small frame with the header array as its buffer, so the
// goroutine's stack shrinks back to the minimum between messages; the rest of a frame is read
// by readFrame, its payload into a pooled buffer returned once the message is handled.
func (s *Socket) readLoop(c *wsConn) {
	st := &frameReader{reason: ReasonTransportClose}
	for {
		if _, err := io.ReadFull(c, c.hdr[:2]); err != nil {
			st.fail(err)
			break
		}
		if !s.readFrame(c, st) {
			break
		}
	}
	if st.msg != nil {
		putBuf(st.msg)
	}
	s.readEnded(c, st)
}

// frameReader is what a read loop carries from one frame to the next.
type frameReader struct {
	msg       *[]byte // the message being assembled from fragments
	msgBinary bool
	reason    string        // the close reason once the loop ends
	code      ws.StatusCode // the close frame the client gets, if any
}

// closeWith ends the read loop with a close frame carrying code.
func (st *frameReader) closeWith(code ws.StatusCode, reason string) bool {
	st.code, st.reason = code, reason
	return false
}

func (st *frameReader) fail(err error) {
	if err != io.EOF && !isClosedOrTimeout(err) {
		st.reason = ReasonTransportError
	}
}

// readFrame reads the rest of a frame whose first 2 bytes are in c.hdr and handles it; false
// ends the read loop.
func (s *Socket) readFrame(c *wsConn, st *frameReader) bool {
	op, fin, length, mask, err := readHeaderRest(c)
	if err != nil {
		st.fail(err)
		return false
	}
	if op.IsControl() {
		if !fin || length > 125 {
			return st.closeWith(ws.StatusProtocolError, ReasonTransportError)
		}
		bp := getBuf()
		defer putBuf(bp)
		p := (*bp)[:length]
		if _, err := io.ReadFull(c, p); err != nil {
			st.fail(err)
			return false
		}
		ws.Cipher(p, mask, 0)
		switch op {
		case ws.OpClose:
			return st.closeWith(ws.StatusNormalClosure, ReasonTransportClose)
		case ws.OpPing:
			s.mu.Lock()
			if s.ws == c && s.state == stOpen {
				s.sendControlLocked(wsPongFrame, string(p))
			}
			s.mu.Unlock()
		}
		return true
	}
	switch {
	case op == ws.OpContinuation && st.msg == nil, op != ws.OpContinuation && st.msg != nil, op != ws.OpContinuation && op != ws.OpText && op != ws.OpBinary:
		return st.closeWith(ws.StatusProtocolError, ReasonTransportError)
	}
	if st.msg == nil {
		st.msg = getBuf()
		st.msgBinary = op == ws.OpBinary
	}
	have := int64(len(*st.msg))
	if have+length > s.srv.opts.MaxHTTPBufferSize {
		// the reference: "Max payload size exceeded"
		return st.closeWith(ws.StatusMessageTooBig, ReasonTransportError)
	}
	*st.msg = growTo(*st.msg, int(have+length))
	p := (*st.msg)[have:]
	if _, err := io.ReadFull(c, p); err != nil {
		st.reason = ReasonTransportError
		return false
	}
	ws.Cipher(p, mask, 0)
	if !fin {
		return true
	}
	data := *st.msg
	s.srv.metrics.bytesIn[tpWebSocket].Add(float64(len(data)))
	if !st.msgBinary && !utf8.Valid(data) {
		return st.closeWith(ws.StatusInvalidFramePayloadData, ReasonTransportError)
	}
	s.onWSMessage(c, data, st.msgBinary)
	putBuf(st.msg)
	st.msg = nil
	return true
}

// readHeaderRest parses a client frame header whose 2 fixed bytes are in c.hdr, reading the
// extended length and the mask.
func readHeaderRest(c *wsConn) (op ws.OpCode, fin bool, length int64, mask [4]byte, err error) {
	h := c.hdr[:2]
	if h[0]&0x70 != 0 || h[1]&0x80 == 0 {
		// no extension is negotiated (rsv bits), and every client frame is masked
		return 0, false, 0, mask, errProtocol
	}
	fin = h[0]&0x80 != 0
	op = ws.OpCode(h[0] & 0x0f)
	length = int64(h[1] & 0x7f)
	ext := 0
	switch length {
	case 126:
		ext = 2
	case 127:
		ext = 8
	}
	rest := c.hdr[2 : 2+ext+4]
	if _, err = io.ReadFull(c, rest); err != nil {
		return
	}
	switch ext {
	case 2:
		length = int64(binary.BigEndian.Uint16(rest))
	case 8:
		length = int64(binary.BigEndian.Uint64(rest))
		if length < 0 {
			return 0, false, 0, mask, errProtocol
		}
	}
	copy(mask[:], rest[ext:])
	return
}

type protocolErr struct{}

func (protocolErr) Error() string { return "eio: websocket protocol error" }

var errProtocol error = protocolErr{}

func growTo(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	nb := make([]byte, n, max(n, 2*cap(b)))
	copy(nb, b)
	return nb
}

func isClosedOrTimeout(err error) bool {
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return true
	}
	return err == net.ErrClosed || err == io.ErrUnexpectedEOF || isNetClosed(err)
}

func isNetClosed(err error) bool {
	for e := err; e != nil; {
		if e == net.ErrClosed {
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

// writeProbe writes one text frame to a websocket that is probing to upgrade a session: its
// read loop is the only writer it has (the abandon path's close frame is a whole Write too,
// and net.Conn serialises whole Writes).
func writeProbe(c *wsConn, text string) {
	bp := getBuf()
	*bp = appendWSFrame(*bp, ws.OpText, 0, text)
	_ = c.conn.SetWriteDeadline(time.Now().Add(wsCloseGrace))
	_, _ = c.conn.Write(*bp)
	_ = c.conn.SetWriteDeadline(time.Time{})
	putBuf(bp)
}

// readEnded runs when a connection's read loop ends. For the socket's websocket it ends the
// socket (with a close frame when st says so) and settles who closes the connection: the read
// loop if no writer is running, else the writer once it is done (readDone).
func (s *Socket) readEnded(c *wsConn, st *frameReader) {
	s.mu.Lock()
	if u := s.upg; u != nil && u.conn == c {
		s.abortUpgradeLocked()
		s.mu.Unlock()
		return
	}
	if s.ws != c {
		s.mu.Unlock()
		c.conn.Close()
		return
	}
	s.readDone = true
	how := endDrop
	if st.code != 0 {
		s.closeCode = st.code
		how = endClosePacket
	}
	ok := s.endLocked(st.reason, how)
	closeNow := !s.writing
	s.mu.Unlock()
	if closeNow {
		c.conn.Close()
	}
	if ok {
		s.finish()
	}
}

// onWSMessage handles one complete message from connection c: the socket's transport, or a
// websocket probing to upgrade it.
func (s *Socket) onWSMessage(c *wsConn, data []byte, isBinary bool) {
	var p packet
	var err error
	switch {
	case !isBinary:
		p, err = decodePacketText(data, s.protocol)
	case s.protocol == 4:
		p = packet{typ: pMessage, data: data, binary: true}
	case len(data) == 0 || data[0] > 6:
		err = errParse
	default:
		p = packet{typ: '0' + data[0], data: data[1:], binary: true}
	}

	s.mu.Lock()
	if u := s.upg; u != nil && u.conn == c {
		s.onProbePacket(u, p, err) // unlocks
		return
	}
	current := s.ws == c
	s.mu.Unlock()
	if !current {
		return
	}
	switch {
	case err != nil:
		s.end(ReasonParseError, endClosePacket)
	case p.typ == pClose:
		s.end(ReasonTransportClose, endClosePacket)
	default:
		s.onPacket(p)
	}
}

// onProbePacket runs the upgrade, as the reference: "2probe" is answered "3probe" (and a held
// poll is released with a noop from then on), "5" moves the session to the websocket, and
// anything else abandons the upgrade. Called with s.mu held; it unlocks.
func (s *Socket) onProbePacket(u *upgrade, p packet, err error) {
	switch {
	case err == nil && p.typ == pPing && string(p.data) == "probe":
		u.probed = true
		s.srv.sched.arm(&u.check, tUpgradeCheck, upgradeCheckInterval)
		s.mu.Unlock()
		writeProbe(u.conn, "3probe")
		return
	case err == nil && p.typ == pUpgrade && s.state != stClosed:
		s.upg = nil
		s.srv.sched.disarm(&u.check)
		s.srv.sched.disarm(&u.timeout)
		s.transport = tpWebSocket
		s.ws = u.conn
		if s.pollPending && s.final == finalNone {
			// A GET still waiting when the upgrade completes came after the client's "5":
			// the reference answers a GET after the upgrade 400.
			s.final = finalBadRequest
			select {
			case s.pollCh <- struct{}{}:
			default:
			}
		}
		if s.state == stClosing {
			s.wsClose = true
		}
		if len(s.queue) > 0 || s.wsClose {
			s.kickLocked()
		}
		s.mu.Unlock()
		return
	default:
		s.abortUpgradeLocked()
		s.mu.Unlock()
	}
}

// writeLoop writes what is queued, coalescing every pending packet into one buffer and one
// write, until the queue is empty; then the goroutine ends.
func (s *Socket) writeLoop(c *wsConn) {
	dialect := dWS4
	if s.protocol == 3 {
		dialect = dWS3
	}
	for {
		s.mu.Lock()
		q, cost := s.takeQueueLocked()
		closeNow, code := s.wsClose, s.closeCode
		if len(q) == 0 && !closeNow {
			s.returnQueueLocked(q, cost)
			s.writerDoneLocked(c)
			return
		}
		s.mu.Unlock()

		bp := getBuf()
		buf := *bp
		for _, p := range q {
			switch {
			case p.msg != nil:
				buf = append(buf, p.msg.encoded(dialect)...)
			case p.typ == wsPongFrame:
				buf = appendWSFrame(buf, ws.OpPong, 0, p.data)
			default:
				buf = appendWSFrame(buf, ws.OpText, p.typ, p.data)
			}
		}
		if closeNow {
			if code == 0 {
				code = ws.StatusNormalClosure
			}
			buf = appendWSFrame(buf, ws.OpClose, 0, ws.NewCloseFrameBody(code, ""))
			_ = c.conn.SetWriteDeadline(time.Now().Add(wsCloseGrace))
		}
		n, err := c.conn.Write(buf)
		s.srv.metrics.bytesOut[tpWebSocket].Add(float64(n))
		*bp = buf
		putBuf(bp)

		if err != nil {
			c.conn.Close()
			s.end(ReasonTransportError, endDrop)
			s.mu.Lock()
			s.writerDoneLocked(c)
			return
		}
		if closeNow {
			s.end(ReasonForcedClose, endClosePacket) // a graceful Close ends here
			s.mu.Lock()
			if !s.readDone {
				// The close frame is out: half-close and let the read loop see the client's
				// answer (or the grace deadline) and close the connection.
				if cw, ok := c.conn.(interface{ CloseWrite() error }); ok {
					_ = cw.CloseWrite()
				}
				_ = c.conn.SetReadDeadline(time.Now().Add(wsCloseGrace))
			}
			s.writerDoneLocked(c)
			return
		}
		s.mu.Lock()
		s.returnQueueLocked(q, cost)
		s.mu.Unlock()
	}
}

// writerDoneLocked ends a writer goroutine; it closes the connection if the read loop has
// already ended (and left that to the writer). It releases s.mu.
func (s *Socket) writerDoneLocked(c *wsConn) {
	s.writing = false
	done := s.readDone
	s.mu.Unlock()
	if done {
		c.conn.Close()
	}
}
