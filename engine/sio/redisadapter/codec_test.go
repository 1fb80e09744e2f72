package redisadapter

import (
	"reflect"
	"testing"
)

func TestBroadcastRoundTrip(t *testing.T) {
	id := int64(5)
	type msg struct {
		Text string  `json:"text"`
		Seq  int     `json:"seq"`
		Note *string `json:"note"`
	}
	tests := []struct {
		name string
		p    *Packet
		o    BroadcastOptions
		want []any
	}{
		{"struct argument goes by its JSON form", &Packet{Type: PacketEvent, Data: []any{"message:new", msg{"hi", 2, nil}}},
			BroadcastOptions{Rooms: []string{"chat:1"}}, []any{"message:new", map[string]any{"text": "hi", "seq": int64(2), "note": nil}}},
		{"binary stays binary", &Packet{Type: PacketEvent, ID: &id, Data: []any{"file", []byte{0, 255}}},
			BroadcastOptions{Except: []string{"user:1"}, Flags: Flags{Volatile: true, Timeout: 100}}, []any{"file", []byte{0, 255}}},
		{"floats and whole floats", &Packet{Type: PacketEvent, Data: []any{"n", 1.25, 3.0}},
			BroadcastOptions{}, []any{"n", 1.25, int64(3)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := encodeBroadcast("abc123", "/", tt.p, tt.o)
			if err != nil {
				t.Fatal(err)
			}
			uid, p, o, err := decodeBroadcast(b)
			if err != nil {
				t.Fatal(err)
			}
			if uid != "abc123" || p.Nsp != "/" || p.Type != tt.p.Type || !reflect.DeepEqual(p.Data, tt.want) {
				t.Fatalf("got %q %+v, want data %#v", uid, p, tt.want)
			}
			if !reflect.DeepEqual(p.ID, tt.p.ID) {
				t.Fatalf("id %v, want %v", p.ID, tt.p.ID)
			}
			if len(o.Rooms) != len(tt.o.Rooms) || len(o.Except) != len(tt.o.Except) || o.Flags != tt.o.Flags {
				t.Fatalf("opts %+v, want %+v", o, tt.o)
			}
		})
	}
}

// Malformed messages from Redis are refused with an error, never a panic.
func TestDecodeMalformed(t *testing.T) {
	for _, in := range [][]byte{
		nil, {0xc1}, []byte("{"), []byte("[1,2]"),
		{0x93, 0xa1, 'u', 0x01, 0x80},                                      // packet is a number
		{0x93, 0xa1, 'u', 0x81, 0xa4, 't', 'y', 'p', 'e', 0xa1, 'x', 0x80}, // type is a string
		{0x92, 0xa1, 'u', 0x80},                                            // two elements
	} {
		if _, _, _, err := decodeBroadcast(in); err == nil {
			t.Errorf("decodeBroadcast(%x) accepted", in)
		}
	}
	for _, in := range [][]byte{nil, []byte("{nope"), []byte("[]"), {0x01}} {
		if _, err := decodeEither(in); err == nil {
			t.Errorf("decodeEither(%q) accepted", in)
		}
	}
}

// Requests come as JSON text or msgpack and decode alike.
func TestDecodeEither(t *testing.T) {
	js := []byte(`{"uid":"x","type":2,"opts":{"rooms":["a",7],"except":[]},"rooms":["b"]}`)
	mp, err := encodeMsgpack(map[string]any{"uid": "x", "type": 2, "opts": map[string]any{"rooms": []any{"a", 7}, "except": []any{}}, "rooms": []any{"b"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range [][]byte{js, mp} {
		m, err := decodeEither(in)
		if err != nil {
			t.Fatal(err)
		}
		if typ, _ := toInt(m["type"]); typ != reqRemoteJoin {
			t.Fatalf("type %v", m["type"])
		}
		if o := optionsFrom(m["opts"]); !reflect.DeepEqual(o.Rooms, []string{"a", "7"}) {
			t.Fatalf("rooms %v", o.Rooms)
		}
	}
}
