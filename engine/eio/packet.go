package eio

import (
	"encoding/base64"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/gobwas/ws"
)

// Engine.IO packet types, as their ASCII digit on the wire.
const (
	pOpen    = '0'
	pClose   = '1'
	pPing    = '2'
	pPong    = '3'
	pMessage = '4'
	pUpgrade = '5'
	pNoop    = '6'
)

// dialect is one way a message packet is framed on the wire. Each Message caches its encoding
// per dialect, so a broadcast to N sockets of one dialect is encoded once.
type dialect uint8

const (
	dWS4    dialect = iota // websocket, protocol 4 (text messages: also protocol 3)
	dWS3                   // websocket, protocol 3 binary: type byte 4 before the data
	dPoll4                 // polling payload element, protocol 4: "4..." or "b<base64>"
	dPoll3T                // polling text payload element, protocol 3: "<len>:4..." or "<len>:b4<base64>"
	dPoll3B                // polling binary payload element, protocol 3
	nDialects
)

// Message is one immutable Engine.IO "message" payload, shared by every recipient of a
// broadcast. Frames for each (protocol, transport) dialect are encoded lazily, at most once,
// and cached inside it. The data must not change after the Message is made.
type Message struct {
	data   []byte
	binary bool
	mu     sync.Mutex // taken only by the first encoder of a dialect
	done   [nDialects]atomic.Bool
	enc    [nDialects][]byte
}

// TextMessage makes a text message; b must not change afterwards.
func TextMessage(b []byte) *Message { return &Message{data: b} }

// BinaryMessage makes a binary message; b must not change afterwards.
func BinaryMessage(b []byte) *Message { return &Message{data: b, binary: true} }

// Data is the message payload (do not modify it).
func (m *Message) Data() []byte { return m.data }

// IsBinary says whether the message is binary.
func (m *Message) IsBinary() bool { return m.binary }

// queueCost is what a message counts against a socket's MaxQueueBytes.
func (m *Message) queueCost() int { return len(m.data) + 16 }

func (m *Message) encoded(d dialect) []byte {
	if d == dWS3 && !m.binary {
		d = dWS4 // a text frame is the same in both protocols
	}
	if m.done[d].Load() {
		return m.enc[d]
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.done[d].Load() {
		m.enc[d] = m.encode(d)
		m.done[d].Store(true)
	}
	return m.enc[d]
}

func (m *Message) encode(d dialect) []byte {
	// one allocation of the right size: headers and length prefixes fit in 24 bytes
	n := len(m.data) + 24
	if m.binary && (d == dPoll4 || d == dPoll3T) {
		n = base64.StdEncoding.EncodedLen(len(m.data)) + 24
	}
	dst := make([]byte, 0, n)
	switch d {
	case dWS4:
		if m.binary {
			return appendWSFrame(dst, ws.OpBinary, 0, m.data)
		}
		return appendWSFrame(dst, ws.OpText, pMessage, m.data)
	case dWS3:
		return appendWSFrame(dst, ws.OpBinary, 4, m.data)
	case dPoll4:
		return appendPacket4(dst, pMessage, m.data, m.binary)
	case dPoll3T:
		return appendPacket3Text(dst, pMessage, m.data, m.binary)
	default:
		return appendPacket3Binary(dst, pMessage, m.data, m.binary)
	}
}

// appendWSFrame appends one unmasked, final websocket frame whose payload is the optional
// prefix byte (0: none) followed by p.
func appendWSFrame[T ~string | ~[]byte](dst []byte, op ws.OpCode, prefix byte, p T) []byte {
	n := len(p)
	if prefix != 0 {
		n++
	}
	b0 := 0x80 | byte(op)
	switch {
	case n < 126:
		dst = append(dst, b0, byte(n))
	case n <= 0xffff:
		dst = append(dst, b0, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, b0, 127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	if prefix != 0 {
		dst = append(dst, prefix)
	}
	return append(dst, p...)
}

// appendPacket4 appends a protocol 4 packet as polling carries it: binary data as "b"+base64.
func appendPacket4[T ~string | ~[]byte](dst []byte, typ byte, data T, binary bool) []byte {
	if binary {
		dst = append(dst, 'b')
		return base64.StdEncoding.AppendEncode(dst, []byte(data))
	}
	dst = append(dst, typ)
	return append(dst, data...)
}

// appendPacket3Text appends a protocol 3 text-payload element: "<length>:<packet>", the length
// counted in UTF-16 code units as the JavaScript reference counts string length.
func appendPacket3Text[T ~string | ~[]byte](dst []byte, typ byte, data T, binary bool) []byte {
	if binary {
		n := 2 + base64.StdEncoding.EncodedLen(len(data))
		dst = strconv.AppendInt(dst, int64(n), 10)
		dst = append(dst, ':', 'b', typ)
		return base64.StdEncoding.AppendEncode(dst, []byte(data))
	}
	dst = strconv.AppendInt(dst, int64(1+utf16Len(data)), 10)
	dst = append(dst, ':', typ)
	return append(dst, data...)
}

// appendPacket3Binary appends a protocol 3 binary-payload element: a 0 (string) or 1 (binary)
// byte, the decimal length as one byte per digit, 255, then the packet.
func appendPacket3Binary[T ~string | ~[]byte](dst []byte, typ byte, data T, binary bool) []byte {
	kind := byte(0)
	if binary {
		kind = 1
		typ -= '0'
	}
	dst = append(dst, kind)
	start := len(dst)
	dst = strconv.AppendInt(dst, int64(1+len(data)), 10)
	for i := start; i < len(dst); i++ {
		dst[i] -= '0'
	}
	dst = append(dst, 255, typ)
	return append(dst, data...)
}

// utf16Len is the length of UTF-8 text in UTF-16 code units (what JavaScript's String.length
// says); an invalid byte counts as one unit, as its U+FFFD replacement would.
func utf16Len[T ~string | ~[]byte](b T) int {
	n := 0
	for i := 0; i < len(b); {
		size, units := runeAt(b, i)
		i += size
		n += units
	}
	return n
}

// runeAt measures the UTF-8 sequence at b[i] as utf8.DecodeRune would (an invalid sequence is
// one byte) and says how many UTF-16 units it takes. Generic, so strings need no conversion.
func runeAt[T ~string | ~[]byte](b T, i int) (size, units int) {
	c := b[i]
	lo, hi := byte(0x80), byte(0xbf)
	switch {
	case c < 0x80:
		return 1, 1
	case c < 0xc2 || c > 0xf4:
		return 1, 1
	case c < 0xe0:
		size = 2
	case c < 0xf0:
		size = 3
		if c == 0xe0 {
			lo = 0xa0
		} else if c == 0xed {
			hi = 0x9f
		}
	default:
		size = 4
		if c == 0xf0 {
			lo = 0x90
		} else if c == 0xf4 {
			hi = 0x8f
		}
	}
	if i+size > len(b) {
		return 1, 1
	}
	for k := 1; k < size; k++ {
		x := b[i+k]
		if k > 1 {
			lo, hi = 0x80, 0xbf
		}
		if x < lo || x > hi {
			return 1, 1
		}
	}
	if size == 4 {
		return 4, 2
	}
	return size, 1
}
