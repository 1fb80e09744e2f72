package eio

import (
	"io"
	"net/http"
	"strconv"
	"sync"
)

// bufPool holds the byte buffers every write and read borrows; none is kept by an idle socket.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxPooledBuf keeps one huge payload from pinning its buffer in the pool.
const maxPooledBuf = 256 << 10

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > maxPooledBuf {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// servePoll answers a long-poll GET: at once if packets are queued, else when one is, when the
// session ends, or (during an upgrade) with a noop.
func (srv *Server) servePoll(w http.ResponseWriter, r *http.Request, s *Socket) {
	s.mu.Lock()
	if s.state == stClosed {
		s.mu.Unlock()
		abort(w, false, codeUnknownSID, "")
		return
	}
	if s.transport != tpPolling {
		s.mu.Unlock()
		abort(w, false, codeBadRequest, "")
		return
	}
	if s.pollPending {
		// One GET at a time: the reference answers the second 400 and closes the session,
		// which sends the first one the close packet.
		s.overlapUnlock(w)
		return
	}
	s.pollPending = true
	if s.pollCh == nil {
		s.pollCh = make(chan struct{}, 1)
	}
	ready := len(s.queue) > 0 || s.state == stClosing
	s.mu.Unlock()

	if !ready {
		select {
		case <-s.pollCh:
		case <-r.Context().Done():
			s.mu.Lock()
			if s.final == finalNone && s.state != stClosed {
				// The reference: "poll connection closed prematurely" is a transport error
				// (what was queued for this GET would be written to nobody).
				s.pollPending = false
				s.endUnlock(ReasonTransportError, endDrop)
				return
			}
			s.mu.Unlock()
		}
	}

	s.mu.Lock()
	select {
	case <-s.pollCh: // a wake-up this GET no longer needs
	default:
	}
	s.pollPending = false
	final := s.final
	s.final = finalNone
	var q []outPacket
	cost := 0
	closing := false
	if final == finalNone {
		q, cost = s.takeQueueLocked()
		closing = s.state == stClosing
	}
	s.mu.Unlock()

	switch final {
	case finalBadRequest:
		abort(w, false, codeBadRequest, "")
		return
	case finalClose:
		srv.writePayload(w, s, nil, pClose)
		return
	case finalNoop:
		srv.writePayload(w, s, nil, pNoop)
		return
	}
	var last byte
	if closing {
		last = pClose
	}
	srv.writePayload(w, s, q, last)
	s.mu.Lock()
	s.returnQueueLocked(q, cost)
	s.mu.Unlock()
	if closing {
		s.end(ReasonForcedClose, endDrop)
	}
}

// overlapUnlock answers a request that overlaps one of its kind 400 and closes the session
// ("transport error"), as the reference does; s.mu is held and released.
func (s *Socket) overlapUnlock(w http.ResponseWriter) {
	s.endUnlock(ReasonTransportError, endClosePacket)
	w.WriteHeader(http.StatusBadRequest)
}

// answerTombstone answers the GET that raced the client's own close with the noop it would
// have had, once; it reports whether it did.
func (s *Socket) answerTombstone(w http.ResponseWriter) bool {
	s.mu.Lock()
	if !s.tombstone {
		s.mu.Unlock()
		return false
	}
	s.tombstone = false
	s.srv.sched.disarm(&s.hb)
	s.mu.Unlock()
	s.srv.remove(s)
	s.srv.writePayload(w, s, nil, pNoop)
	return true
}

// writePayload writes queued packets (and an optional last control packet) as one polling
// payload in the socket's dialect.
func (srv *Server) writePayload(w http.ResponseWriter, s *Socket, q []outPacket, last byte) {
	bp := getBuf()
	buf := *bp
	binaryPayload := false
	if s.protocol == 3 && !s.b64 {
		for _, p := range q {
			if p.msg != nil && p.msg.binary {
				binaryPayload = true
				break
			}
		}
	}
	for i, p := range q {
		switch {
		case s.protocol == 4:
			if i > 0 {
				buf = append(buf, payloadSep)
			}
			if p.msg != nil {
				buf = append(buf, p.msg.encoded(dPoll4)...)
			} else {
				buf = appendPacket4(buf, p.typ, p.data, false)
			}
		case binaryPayload:
			if p.msg != nil {
				buf = append(buf, p.msg.encoded(dPoll3B)...)
			} else {
				buf = appendPacket3Binary(buf, p.typ, p.data, false)
			}
		default:
			if p.msg != nil {
				buf = append(buf, p.msg.encoded(dPoll3T)...)
			} else {
				buf = appendPacket3Text(buf, p.typ, p.data, false)
			}
		}
	}
	if last != 0 {
		switch {
		case s.protocol == 4:
			if len(q) > 0 {
				buf = append(buf, payloadSep)
			}
			buf = append(buf, last)
		case binaryPayload:
			buf = appendPacket3Binary(buf, last, "", false)
		default:
			buf = appendPacket3Text(buf, last, "", false)
		}
	}
	h := w.Header()
	if binaryPayload {
		h.Set("Content-Type", "application/octet-stream")
	} else {
		h.Set("Content-Type", "text/plain; charset=UTF-8")
	}
	h.Set("Content-Length", strconv.Itoa(len(buf)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	n, _ := w.Write(buf)
	srv.metrics.bytesOut[tpPolling].Add(float64(n))
	*bp = buf
	putBuf(bp)
}

// servePost takes a POST of packets: one at a time per session; an invalid payload is a 400
// and closes the session ("parse error"); a body over MaxHTTPBufferSize is a 413 and the
// session stays, as the reference answers.
func (srv *Server) servePost(w http.ResponseWriter, r *http.Request, s *Socket) {
	s.mu.Lock()
	if s.posting {
		s.overlapUnlock(w) // one POST at a time, likewise
		return
	}
	s.posting = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.posting = false
		s.mu.Unlock()
	}()

	binaryBody := r.Header.Get("Content-Type") == "application/octet-stream"
	if binaryBody && s.protocol == 4 {
		s.end(ReasonTransportError, endClosePacket) // the reference's "invalid content"
		abort(w, false, codeBadRequest, "")
		return
	}
	max := srv.opts.MaxHTTPBufferSize
	if r.ContentLength > max {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	bp := getBuf()
	defer putBuf(bp)
	body, err := readBody(r.Body, *bp, max)
	*bp = body[:0]
	if err == errTooLarge {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	if err != nil {
		s.end(ReasonTransportError, endDrop) // "data request connection closed prematurely"
		return
	}
	srv.metrics.bytesIn[tpPolling].Add(float64(len(body)))

	decode := decodePayload4
	if s.protocol == 3 {
		decode = decodePayload3Text
		if binaryBody {
			decode = decodePayload3Binary
		}
	}
	err = decode(body, func(p packet) bool {
		if p.typ == pClose {
			s.end(ReasonTransportClose, endNoop)
			return false
		}
		s.onPacket(p)
		return true
	})
	if err != nil {
		s.end(ReasonParseError, endClosePacket)
		abort(w, false, codeBadRequest, "")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html") // as the reference: text/plain makes some agents download
	h.Set("Content-Length", "2")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("ok"))
}

type tooLarge struct{}

func (tooLarge) Error() string { return "eio: payload too large" }

var errTooLarge error = tooLarge{}

// readBody reads all of rd into buf, failing with errTooLarge past max bytes.
func readBody(rd io.Reader, buf []byte, max int64) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > max {
			return buf, errTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
