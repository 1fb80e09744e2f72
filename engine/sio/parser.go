package sio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"sync"

	"github.com/parley-chat/parley/engine/eio"
)

// PacketType is a Socket.IO packet type; protocols 4 and 5 number them alike
// (protocol 4 calls CONNECT_ERROR "ERROR").
type PacketType byte

const (
	Connect PacketType = iota
	Disconnect
	Event
	Ack
	ConnectError
	BinaryEvent
	BinaryAck
)

func (t PacketType) String() string {
	switch t {
	case Connect:
		return "CONNECT"
	case Disconnect:
		return "DISCONNECT"
	case Event:
		return "EVENT"
	case Ack:
		return "ACK"
	case ConnectError:
		return "CONNECT_ERROR"
	case BinaryEvent:
		return "BINARY_EVENT"
	case BinaryAck:
		return "BINARY_ACK"
	}
	return "PacketType(" + strconv.Itoa(int(t)) + ")"
}

// NoID is Packet.ID of a packet that asks for no acknowledgement.
const NoID int64 = -1

// maxID is the largest ack id accepted: JavaScript numbers stay exact below it.
const maxID = 1<<53 - 1

// Packet is one decoded Socket.IO packet. Data is what encoding/json
// decodes into `any` ([]any for events and acks, map[string]any for a
// CONNECT payload), with every binary placeholder of a binary packet
// replaced by its attachment as []byte.
type Packet struct {
	Type PacketType
	Nsp  string
	ID   int64
	Data any
}

// reservedEvents may not be sent by a client (socket.io-parser's list).
var reservedEvents = map[string]bool{
	"connect": true, "connect_error": true, "disconnect": true,
	"disconnecting": true, "newListener": true, "removeListener": true,
}

// Decoding errors. Any of them is a protocol violation: the server closes
// the connection ("parse error"), as the reference server does.
var (
	ErrUnknownType        = errors.New("sio: unknown packet type")
	ErrIllegalAttachments = errors.New("sio: illegal attachments")
	ErrInvalidPayload     = errors.New("sio: invalid payload")
	ErrUnexpectedBinary   = errors.New("sio: got binary data when not reconstructing a packet")
	ErrUnexpectedText     = errors.New("sio: got plaintext data when reconstructing a packet")
	ErrTooLarge           = errors.New("sio: binary attachments exceed the size limit")
)

// Decoder turns one connection's Engine.IO messages into packets: a text
// message is a packet, or the head of a binary one whose attachments
// follow as binary messages. One Decoder per connection; not safe for
// concurrent use.
type Decoder struct {
	// MaxAttachments bounds the attachment count a packet may announce;
	// MaxBytes bounds their total size. Zero means 16 and 1e6.
	MaxAttachments int
	MaxBytes       int

	pending *Packet // a binary packet waiting for attachments
	want    int
	bufs    [][]byte
	size    int
}

// Add decodes one Engine.IO message (data need not outlive the call). It
// returns a packet once one is complete, nil while attachments are awaited.
func (d *Decoder) Add(data []byte, binary bool) (*Packet, error) {
	if binary {
		if d.pending == nil {
			return nil, ErrUnexpectedBinary
		}
		d.size += len(data)
		if d.size > d.maxBytes() {
			d.reset()
			return nil, ErrTooLarge
		}
		d.bufs = append(d.bufs, bytes.Clone(data))
		if len(d.bufs) < d.want {
			return nil, nil
		}
		p, bufs := d.pending, d.bufs
		d.reset()
		v, err := reconstruct(p.Data, bufs)
		if err != nil {
			return nil, err
		}
		p.Data = v
		return p, nil
	}
	if d.pending != nil {
		d.reset()
		return nil, ErrUnexpectedText
	}
	p, attachments, err := decodeText(data)
	if err != nil {
		return nil, err
	}
	if p.Type == BinaryEvent || p.Type == BinaryAck {
		if attachments > d.maxAttachments() {
			return nil, ErrIllegalAttachments
		}
		if attachments > 0 {
			d.pending, d.want = p, attachments
			return nil, nil
		}
		// No attachments: every placeholder is out of range.
		v, err := reconstruct(p.Data, nil)
		if err != nil {
			return nil, err
		}
		p.Data = v
	}
	return p, nil
}

func (d *Decoder) reset() { d.pending, d.want, d.bufs, d.size = nil, 0, nil, 0 }

func (d *Decoder) maxAttachments() int {
	if d.MaxAttachments > 0 {
		return d.MaxAttachments
	}
	return 16
}

func (d *Decoder) maxBytes() int {
	if d.MaxBytes > 0 {
		return d.MaxBytes
	}
	return 1e6
}

// Decode decodes one complete text packet (a binary packet only if it
// announces no attachments). It is Decoder.Add for callers without
// attachments, such as tests and fuzzing.
func Decode(data []byte) (*Packet, error) {
	var d Decoder
	p, err := d.Add(data, false)
	if err == nil && p == nil {
		return nil, ErrIllegalAttachments
	}
	return p, err
}

// decodeText parses <type>[<attachments>-][<nsp>,][<id>][<json>] as
// socket.io-parser does, checking the payload's shape per type.
func decodeText(s []byte) (*Packet, int, error) {
	if len(s) == 0 || s[0] < '0' || s[0] > '6' {
		return nil, 0, ErrUnknownType
	}
	p := &Packet{Type: PacketType(s[0] - '0'), Nsp: "/", ID: NoID}
	i := 1
	attachments := 0
	if p.Type == BinaryEvent || p.Type == BinaryAck {
		start := i
		for i < len(s) && s[i] != '-' {
			if s[i] < '0' || s[i] > '9' {
				return nil, 0, ErrIllegalAttachments
			}
			i++
		}
		if i == start || i == len(s) || i-start > 6 {
			return nil, 0, ErrIllegalAttachments
		}
		attachments, _ = strconv.Atoi(string(s[start:i]))
		i++ // the '-'
	}
	if i < len(s) && s[i] == '/' {
		start := i
		for i < len(s) && s[i] != ',' {
			i++
		}
		p.Nsp = string(s[start:i])
		if i < len(s) {
			i++ // the ','
		}
	}
	if i < len(s) && s[i] >= '0' && s[i] <= '9' {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		id, err := strconv.ParseInt(string(s[start:i]), 10, 64)
		if err != nil || id > maxID {
			return nil, 0, ErrInvalidPayload
		}
		p.ID = id
	}
	if i < len(s) {
		if err := json.Unmarshal(s[i:], &p.Data); err != nil {
			return nil, 0, ErrInvalidPayload
		}
		if !payloadValid(p.Type, p.Data) {
			return nil, 0, ErrInvalidPayload
		}
	} else if !payloadValid(p.Type, nil) {
		return nil, 0, ErrInvalidPayload
	}
	return p, attachments, nil
}

// payloadValid is socket.io-parser's isPayloadValid; a missing payload is
// nil and valid where the reference accepts undefined.
func payloadValid(t PacketType, v any) bool {
	switch t {
	case Connect:
		if v == nil {
			return true // the reference's undefined: connect with no auth
		}
		_, ok := v.(map[string]any)
		return ok
	case Disconnect:
		return v == nil
	case ConnectError:
		switch v.(type) {
		case string, map[string]any:
			return true
		}
		return false
	case Event, BinaryEvent:
		a, ok := v.([]any)
		if !ok || len(a) == 0 {
			return false
		}
		switch name := a[0].(type) {
		case float64:
			return true
		case string:
			return !reservedEvents[name]
		}
		return false
	case Ack, BinaryAck:
		_, ok := v.([]any)
		return ok
	}
	return false
}

// reconstruct replaces every placeholder {"_placeholder":true,"num":n} with
// bufs[n]; a placeholder out of range is refused.
func reconstruct(v any, bufs [][]byte) (any, error) {
	switch t := v.(type) {
	case []any:
		for i, e := range t {
			r, err := reconstruct(e, bufs)
			if err != nil {
				return nil, err
			}
			t[i] = r
		}
	case map[string]any:
		if t["_placeholder"] == true {
			n, ok := t["num"].(float64)
			if !ok || n < 0 || n != math.Trunc(n) || int(n) >= len(bufs) {
				return nil, ErrIllegalAttachments
			}
			return bufs[int(n)], nil
		}
		for k, e := range t {
			r, err := reconstruct(e, bufs)
			if err != nil {
				return nil, err
			}
			t[k] = r
		}
	}
	return v, nil
}

// Encoding.

// placeholder is what a binary attachment becomes in the packet's JSON.
type placeholder struct {
	Placeholder bool `json:"_placeholder"`
	Num         int  `json:"num"`
}

// hasBinary reports whether v holds a []byte where the encoder looks for
// one: v itself, or inside []any and map[string]any (structs are
// marshalled as encoding/json does, []byte fields as base64).
func hasBinary(v any) bool {
	switch t := v.(type) {
	case []byte:
		return true
	case []any:
		for _, e := range t {
			if hasBinary(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range t {
			if hasBinary(e) {
				return true
			}
		}
	}
	return false
}

// deconstruct copies v with every []byte replaced by a placeholder,
// appending the bytes to bufs in the order the placeholders number them.
func deconstruct(v any, bufs *[][]byte) any {
	switch t := v.(type) {
	case []byte:
		*bufs = append(*bufs, t)
		return placeholder{Placeholder: true, Num: len(*bufs) - 1}
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = deconstruct(e, bufs)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(t))
		// encoding/json writes keys sorted; number placeholders in that
		// order too, so they read in order on the wire.
		for _, k := range sortedKeys(t) {
			out[k] = deconstruct(t[k], bufs)
		}
		return out
	}
	return v
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// jsonAppend writes v as JavaScript's JSON.stringify would for the same
// value: no HTML escaping, no trailing newline.
func jsonAppend(buf *bytes.Buffer, v any) error {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	buf.Truncate(buf.Len() - 1)
	return nil
}

// Encoded is one packet ready to send: its text and its attachments.
type Encoded struct {
	Text        []byte
	Attachments [][]byte
}

// Encode encodes p. p.Data holds values as encoding/json marshals them;
// []byte inside Data (directly, or in []any and map[string]any) becomes
// a binary attachment, and EVENT and ACK become their binary types.
func Encode(p *Packet) (Encoded, error) {
	var bufs [][]byte
	data := p.Data
	typ := p.Type
	if (typ == Event || typ == Ack || typ == BinaryEvent || typ == BinaryAck) && hasBinary(data) {
		data = deconstruct(data, &bufs)
		if typ == Event {
			typ = BinaryEvent
		} else if typ == Ack {
			typ = BinaryAck
		}
	}
	buf := bufPool.Get().(*bytes.Buffer)
	defer func() { buf.Reset(); bufPool.Put(buf) }()
	buf.WriteByte('0' + byte(typ))
	if typ == BinaryEvent || typ == BinaryAck {
		buf.WriteString(strconv.Itoa(len(bufs)))
		buf.WriteByte('-')
	}
	if p.Nsp != "" && p.Nsp != "/" {
		buf.WriteString(p.Nsp)
		buf.WriteByte(',')
	}
	if p.ID >= 0 {
		buf.WriteString(strconv.FormatInt(p.ID, 10))
	}
	if data != nil {
		if err := jsonAppend(buf, data); err != nil {
			return Encoded{}, fmt.Errorf("sio: encode %s: %w", typ, err)
		}
	}
	return Encoded{Text: bytes.Clone(buf.Bytes()), Attachments: bufs}, nil
}

// encodeEvent encodes an EVENT [event, args...] without building the array
// when no argument is binary: the hot path of every emit and broadcast.
func encodeEvent(nsp string, id int64, event string, args []any) (Encoded, error) {
	for _, a := range args {
		if hasBinary(a) {
			data := make([]any, 0, len(args)+1)
			data = append(append(data, event), args...)
			return Encode(&Packet{Type: Event, Nsp: nsp, ID: id, Data: data})
		}
	}
	buf := bufPool.Get().(*bytes.Buffer)
	defer func() { buf.Reset(); bufPool.Put(buf) }()
	buf.WriteByte('0' + byte(Event))
	if nsp != "" && nsp != "/" {
		buf.WriteString(nsp)
		buf.WriteByte(',')
	}
	if id >= 0 {
		buf.WriteString(strconv.FormatInt(id, 10))
	}
	buf.WriteByte('[')
	if err := jsonAppend(buf, event); err != nil {
		return Encoded{}, err
	}
	for _, a := range args {
		buf.WriteByte(',')
		if err := jsonAppend(buf, a); err != nil {
			return Encoded{}, fmt.Errorf("sio: encode %q: %w", event, err)
		}
	}
	buf.WriteByte(']')
	return Encoded{Text: bytes.Clone(buf.Bytes())}, nil
}

func sortedKeys(m map[string]any) []string {
	return slices.Sorted(maps.Keys(m))
}

// frames is one packet as Engine.IO messages (its text, then its
// attachments), built once and shared by every recipient.
type frames struct {
	msgs []*eio.Message
}

func (e Encoded) frames() *frames {
	f := &frames{msgs: make([]*eio.Message, 0, 1+len(e.Attachments))}
	f.msgs = append(f.msgs, eio.TextMessage(e.Text))
	for _, b := range e.Attachments {
		f.msgs = append(f.msgs, eio.BinaryMessage(b))
	}
	return f
}
