package redisadapter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"

	"github.com/vmihailenco/msgpack/v5"
)

// Socket.IO packet types that travel between nodes.
const (
	PacketEvent       = 2
	PacketBinaryEvent = 5
)

// Packet is a Socket.IO packet as the adapters exchange it: the event name
// and its arguments in Data, binary arguments as []byte (msgpack bin), never
// replaced by placeholders; the receiving node encodes it for its clients.
type Packet struct {
	Type int
	Nsp  string
	Data []any
	// ID is set on broadcasts that expect acknowledgements.
	ID *int64
}

// Flags are the broadcast modifiers of Socket.IO that cross the wire.
type Flags struct {
	Volatile bool
	// Compress is nil when the sender did not choose.
	Compress *bool
	// Local broadcasts never leave the node; they are not published.
	Local bool
	// Timeout (milliseconds) bounds a broadcast that waits for acks.
	Timeout int64
}

// BroadcastOptions selects sockets: those in any of Rooms (every socket of
// the namespace when empty) and in none of Except.
type BroadcastOptions struct {
	Rooms  []string
	Except []string
	Flags  Flags
}

// SocketDetails is a socket as FetchSockets returns it from any node; the
// JSON names are those of @socket.io/redis-adapter's REMOTE_FETCH response.
type SocketDetails struct {
	ID        string    `json:"id"`
	Handshake Handshake `json:"handshake"`
	Rooms     []string  `json:"rooms"`
	Data      any       `json:"data"`
}

// Handshake is the part of a socket's handshake Socket.IO shares.
type Handshake struct {
	Headers map[string]any `json:"headers"`
	Time    string         `json:"time"`
	Address string         `json:"address"`
	XDomain bool           `json:"xdomain"`
	Secure  bool           `json:"secure"`
	Issued  int64          `json:"issued"`
	URL     string         `json:"url"`
	Query   map[string]any `json:"query"`
	Auth    map[string]any `json:"auth"`
}

// Request types, numbered as @socket.io/redis-adapter numbers them.
const (
	reqSockets = iota
	reqAllRooms
	reqRemoteJoin
	reqRemoteLeave
	reqRemoteDisconnect
	reqRemoteFetch
	reqServerSideEmit
	reqBroadcast
	reqBroadcastClientCount
	reqBroadcastAck
)

// jsUndefined is notepack.io's encoding of JavaScript's undefined (fixext 1,
// type 0); it decodes to nil.
type jsUndefined struct{}

func init() {
	msgpack.RegisterExtDecoder(0, jsUndefined{}, func(d *msgpack.Decoder, v reflect.Value, extLen int) error {
		for range extLen {
			if _, err := d.DecodeUint8(); err != nil {
				return err
			}
		}
		return nil
	})
}

// encodeMsgpack encodes v as notepack.io would: compact integers, and
// floats as float64 unless whole.
func encodeMsgpack(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	enc.SetCustomStructTag("json")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodeMsgpack decodes one value into plain Go values: map[string]any,
// []any, string, []byte, int64, uint64, float64, bool, nil.
func decodeMsgpack(b []byte) (any, error) {
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	// Not the "loose" mode: it would turn bin into string.
	v, err := dec.DecodeInterface()
	if err != nil {
		return nil, err
	}
	return plain(v), nil
}

// decodeEither decodes a request or response: the adapter sends most of them
// as JSON text and the rest as msgpack, told apart by a leading '{'.
func decodeEither(b []byte) (map[string]any, error) {
	var v any
	if len(b) > 0 && b[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		v = plain(v)
	} else {
		var err error
		if v, err = decodeMsgpack(b); err != nil {
			return nil, err
		}
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("not a map")
	}
	return m, nil
}

// plain normalises decoded values so JSON and msgpack input look alike.
func plain(v any) any {
	switch t := v.(type) {
	case jsUndefined, *jsUndefined:
		return nil
	case int8:
		return int64(t)
	case int16:
		return int64(t)
	case int32:
		return int64(t)
	case uint8:
		return int64(t)
	case uint16:
		return int64(t)
	case uint32:
		return int64(t)
	case uint64:
		if t <= math.MaxInt64 {
			return int64(t)
		}
		return t
	case float32:
		return float64(t)
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	case map[string]any:
		for k, e := range t {
			t[k] = plain(e)
		}
		return t
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[fmt.Sprint(k)] = plain(e)
		}
		return m
	case []any:
		for i, e := range t {
			t[i] = plain(e)
		}
		return t
	}
	return v
}

// toWire turns an argument into what notepack.io would have produced for
// the same value in JavaScript: []byte stays binary, Go structs and other
// types go through their JSON form, as clients would see them.
func toWire(v any) (any, error) {
	switch t := v.(type) {
	case nil, string, bool, []byte, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32:
		return t, nil
	case float64:
		if t == math.Trunc(t) && math.Abs(t) < 1<<53 {
			return int64(t), nil
		}
		return t, nil
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			w, err := toWire(e)
			if err != nil {
				return nil, err
			}
			out[i] = w
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			w, err := toWire(e)
			if err != nil {
				return nil, err
			}
			out[k] = w
		}
		return out, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode argument: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var g any
	if err := dec.Decode(&g); err != nil {
		return nil, fmt.Errorf("encode argument: %w", err)
	}
	return plain(g), nil
}

func (p *Packet) wire(nsp string) (map[string]any, error) {
	data, err := toWire(p.Data)
	if err != nil {
		return nil, err
	}
	m := map[string]any{"type": p.Type, "data": data, "nsp": nsp}
	if p.ID != nil {
		m["id"] = *p.ID
	}
	return m, nil
}

func packetFrom(v any) (*Packet, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("packet is not a map")
	}
	p := &Packet{Nsp: "/"}
	t, ok := toInt(m["type"])
	if !ok {
		return nil, errors.New("packet type is not a number")
	}
	p.Type = int(t)
	if nsp, ok := m["nsp"].(string); ok {
		p.Nsp = nsp
	}
	if d, ok := m["data"].([]any); ok {
		p.Data = d
	} else if m["data"] != nil {
		return nil, errors.New("packet data is not a list")
	}
	if id, ok := toInt(m["id"]); ok {
		p.ID = &id
	}
	return p, nil
}

func (o BroadcastOptions) wire() map[string]any {
	flags := map[string]any{}
	if o.Flags.Volatile {
		flags["volatile"] = true
	}
	if o.Flags.Compress != nil {
		flags["compress"] = *o.Flags.Compress
	}
	if o.Flags.Timeout > 0 {
		flags["timeout"] = o.Flags.Timeout
	}
	return map[string]any{"rooms": nonNil(o.Rooms), "except": nonNil(o.Except), "flags": flags}
}

// selector is the {rooms, except} of requests, which carry no flags.
func (o BroadcastOptions) selector() map[string]any {
	return map[string]any{"rooms": nonNil(o.Rooms), "except": nonNil(o.Except)}
}

func optionsFrom(v any) BroadcastOptions {
	m, _ := v.(map[string]any)
	o := BroadcastOptions{Rooms: rooms(m["rooms"]), Except: rooms(m["except"])}
	f, _ := m["flags"].(map[string]any)
	o.Flags.Volatile, _ = f["volatile"].(bool)
	o.Flags.Local, _ = f["local"].(bool)
	if c, ok := f["compress"].(bool); ok {
		o.Flags.Compress = &c
	}
	o.Flags.Timeout, _ = toInt(f["timeout"])
	return o
}

// rooms reads a room list; JavaScript rooms may be numbers.
func rooms(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, r := range list {
		switch t := r.(type) {
		case string:
			out = append(out, t)
		case int64:
			out = append(out, strconv.FormatInt(t, 10))
		case uint64:
			out = append(out, strconv.FormatUint(t, 10))
		case float64:
			out = append(out, strconv.FormatFloat(t, 'f', -1, 64))
		}
	}
	return out
}

func toInt(v any) (int64, bool) {
	switch t := v.(type) {
	case int64:
		return t, true
	case uint64:
		return int64(t), true
	case float64:
		return int64(t), t == math.Trunc(t)
	}
	return 0, false
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// encodeBroadcast is the message of a broadcast channel: [uid, packet, opts].
func encodeBroadcast(uid, nsp string, p *Packet, o BroadcastOptions) ([]byte, error) {
	pk, err := p.wire(nsp)
	if err != nil {
		return nil, err
	}
	return encodeMsgpack([]any{uid, pk, o.wire()})
}

// decodeBroadcast reads [uid, packet, opts].
func decodeBroadcast(b []byte) (uid string, p *Packet, o BroadcastOptions, err error) {
	v, err := decodeMsgpack(b)
	if err != nil {
		return "", nil, o, fmt.Errorf("decode broadcast: %w", err)
	}
	list, ok := v.([]any)
	if !ok || len(list) < 3 {
		return "", nil, o, errors.New("decode broadcast: not [uid, packet, opts]")
	}
	uid, _ = list[0].(string)
	if p, err = packetFrom(list[1]); err != nil {
		return "", nil, o, fmt.Errorf("decode broadcast: %w", err)
	}
	return uid, p, optionsFrom(list[2]), nil
}
