package sio

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestDecodeEncodeRoundTrip(t *testing.T) {
	// Protocols 4 and 5 write these packets identically; the table is both
	// dialects' (the 2.x parser reads the same text).
	for _, text := range []string{
		`0`,
		`0{"token":"123"}`,
		`0/custom,`,
		`0/custom,{"token":"abc"}`,
		`1`,
		`1/custom,`,
		`2["message",1,"2",{"3":[true]}]`,
		`2456["message-with-ack",1,"2",{"3":[false]}]`,
		`2/custom,7["x"]`,
		`2[1]`,
		`3456[1,"2",{"3":[false]}]`,
		`3/custom,12[]`,
		`4{"message":"unauthorized"}`,
		`4"unauthorized"`,
		`4/random,{"message":"Invalid namespace"}`,
	} {
		p, err := Decode([]byte(text))
		if err != nil {
			t.Fatalf("decode %q: %v", text, err)
		}
		enc, err := Encode(p)
		if err != nil {
			t.Fatalf("encode %q: %v", text, err)
		}
		want := text
		if want == `0/custom,` || want == `1/custom,` {
			want = text // nsp with its comma
		}
		if string(enc.Text) != want {
			t.Errorf("round trip %q -> %q", text, enc.Text)
		}
	}
}

func TestDecodeFields(t *testing.T) {
	p, err := Decode([]byte(`2/admin,42["ev",{"a":1}]`))
	if err != nil {
		t.Fatal(err)
	}
	if p.Type != Event || p.Nsp != "/admin" || p.ID != 42 {
		t.Fatalf("packet %+v", p)
	}
	if !reflect.DeepEqual(p.Data, []any{"ev", map[string]any{"a": 1.0}}) {
		t.Fatalf("data %#v", p.Data)
	}
	// A namespace without its comma runs to the end (the reference's "40/random").
	if p, err := Decode([]byte(`0/random`)); err != nil || p.Nsp != "/random" || p.Data != nil {
		t.Fatalf("%+v %v", p, err)
	}
	if p, err := Decode([]byte(`2["x"]`)); err != nil || p.ID != NoID || p.Nsp != "/" {
		t.Fatalf("%+v %v", p, err)
	}
}

func TestDecodeMalformed(t *testing.T) {
	for _, text := range []string{
		``, `7`, `9["x"]`, `a`, `4abc`, // unknown type; CONNECT_ERROR with a non-JSON payload
		`42{}`[1:],                       // an event that is not an array
		`2{}`, `2[]`, `2[{}]`, `2[null]`, // no event name
		`2abc["message",1]`,                                     // an ack id that is not one
		`2["connect"]`, `2["disconnect",1]`, `2["newListener"]`, // reserved names
		`2["x"`, `2["x"]]`, `2["x"] x`, // broken JSON
		`3{}`, `3"x"`, // an ack that is not an array
		`0[]`, `0"x"`, `0 1`, // a CONNECT payload that is not an object
		`1{}`, `1"x"`, // DISCONNECT carries nothing
		`4[]`, `4 1`, // CONNECT_ERROR: a string or an object
		`5["x"]`, `5-["x"]`, `5x-["x"]`, `51`, `5999999999-["x"]`, // attachments missing or illegal
		`299999999999999999999["x"]`,                  // an ack id past 2^53
		`51-["x",{"_placeholder":true,"num":0}]`[0:2], // a count without its dash
	} {
		if p, err := Decode([]byte(text)); err == nil {
			t.Errorf("%q decoded to %+v", text, p)
		}
	}
}

func TestBinaryPlaceholders(t *testing.T) {
	var d Decoder
	p, err := d.Add([]byte(`52-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`), false)
	if err != nil || p != nil {
		t.Fatalf("head: %+v %v", p, err)
	}
	scratch := []byte{1, 2, 3}
	if p, err = d.Add(scratch, true); err != nil || p != nil {
		t.Fatalf("first attachment: %+v %v", p, err)
	}
	scratch[0] = 9 // the caller's buffer is not kept
	if p, err = d.Add([]byte{4, 5, 6}, true); err != nil || p == nil {
		t.Fatalf("second attachment: %+v %v", p, err)
	}
	want := []any{"message", []byte{1, 2, 3}, []byte{4, 5, 6}}
	if p.Type != BinaryEvent || !reflect.DeepEqual(p.Data, want) {
		t.Fatalf("packet %+v", p)
	}

	// Encoding them back: same text, same attachments, in order.
	enc, err := Encode(&Packet{Type: Event, ID: NoID, Data: []any{"message-back", []byte{1, 2, 3}, map[string]any{"b": []byte{4, 5, 6}}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(enc.Text); got != `52-["message-back",{"_placeholder":true,"num":0},{"b":{"_placeholder":true,"num":1}}]` {
		t.Fatalf("text %s", got)
	}
	if len(enc.Attachments) != 2 || !bytes.Equal(enc.Attachments[1], []byte{4, 5, 6}) {
		t.Fatalf("attachments %v", enc.Attachments)
	}
	enc, _ = Encode(&Packet{Type: Ack, ID: 789, Data: []any{[]byte{1}}})
	if string(enc.Text) != `61-789[{"_placeholder":true,"num":0}]` {
		t.Fatalf("binary ack %s", enc.Text)
	}
}

func TestBinaryRefused(t *testing.T) {
	cases := []struct {
		name  string
		steps []any // string: text message; []byte: binary message
		want  error
	}{
		{"placeholder past the count", []any{`51-["m",{"_placeholder":true,"num":1}]`, []byte{1}}, ErrIllegalAttachments},
		{"negative placeholder", []any{`51-["m",{"_placeholder":true,"num":-1}]`, []byte{1}}, ErrIllegalAttachments},
		{"fractional placeholder", []any{`51-["m",{"_placeholder":true,"num":0.5}]`, []byte{1}}, ErrIllegalAttachments},
		{"placeholder without a number", []any{`51-["m",{"_placeholder":true}]`, []byte{1}}, ErrIllegalAttachments},
		{"placeholder with no attachments", []any{`50-["m",{"_placeholder":true,"num":0}]`}, ErrIllegalAttachments},
		{"too many attachments", []any{`517-["m"]`}, ErrIllegalAttachments},
		{"binary out of the blue", []any{[]byte{1}}, ErrUnexpectedBinary},
		{"text while attachments are awaited", []any{`51-["m",{"_placeholder":true,"num":0}]`, `2["m"]`}, ErrUnexpectedText},
		{"attachments past the size bound", []any{`52-["m"]`, make([]byte, 600), make([]byte, 600)}, ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Decoder{MaxBytes: 1000}
			var err error
			for _, s := range c.steps {
				switch v := s.(type) {
				case string:
					_, err = d.Add([]byte(v), false)
				case []byte:
					_, err = d.Add(v, true)
				}
				if err != nil {
					break
				}
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	// A text packet's placeholders are plain objects: only binary packets carry attachments.
	p, err := Decode([]byte(`2["m",{"_placeholder":true,"num":0}]`))
	if err != nil || !reflect.DeepEqual(p.Data, []any{"m", map[string]any{"_placeholder": true, "num": 0.0}}) {
		t.Fatalf("%+v %v", p, err)
	}
}

func TestEncodeEventMatchesEncode(t *testing.T) {
	args := []any{map[string]any{"text": "<b>&</b>", "n": 1}, "two", nil, []any{true}}
	fast, err := encodeEvent("/", NoID, "message:new", args)
	if err != nil {
		t.Fatal(err)
	}
	slow, _ := Encode(&Packet{Type: Event, ID: NoID, Data: append([]any{"message:new"}, args...)})
	if !bytes.Equal(fast.Text, slow.Text) {
		t.Fatalf("%s != %s", fast.Text, slow.Text)
	}
	// No HTML escaping: the text is what JSON.stringify writes.
	if want := `2["message:new",{"n":1,"text":"<b>&</b>"},"two",null,[true]]`; string(fast.Text) != want {
		t.Fatalf("%s", fast.Text)
	}
	enc, _ := encodeEvent("/chat", 5, "x", nil)
	if string(enc.Text) != `2/chat,5["x"]` {
		t.Fatalf("%s", enc.Text)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{`0`, `0{"token":"x"}`, `2["m",1]`, `21["m"]`, `3/n,1[]`, `4"e"`, `51-["m",{"_placeholder":true,"num":0}]`, `4abc`} {
		f.Add([]byte(s), []byte{1, 2})
	}
	f.Fuzz(func(t *testing.T, text, bin []byte) {
		var d Decoder
		p, err := d.Add(text, false)
		if err == nil && p == nil {
			p, err = d.Add(bin, true)
		}
		if err != nil || p == nil {
			return
		}
		// Whatever decodes encodes, and decodes again to the same packet
		// type and namespace.
		enc, err := Encode(p)
		if err != nil {
			t.Fatalf("decoded %q but cannot encode %+v: %v", text, p, err)
		}
		var d2 Decoder
		q, err := d2.Add(enc.Text, false)
		for _, a := range enc.Attachments {
			if err != nil || q != nil {
				break
			}
			q, err = d2.Add(a, true)
		}
		if err != nil || q == nil || q.Nsp != p.Nsp || q.ID != p.ID {
			t.Fatalf("%q -> %q does not decode back: %+v %v", text, enc.Text, q, err)
		}
	})
}
