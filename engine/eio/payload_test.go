package eio

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// decoded renders what a decoder yielded, one packet per element: "4:hello", "4:b[01020304]".
func decoded(t testing.TB, decode func([]byte, func(packet) bool) error, body []byte) ([]string, error) {
	t.Helper()
	var out []string
	err := decode(body, func(p packet) bool {
		if p.binary {
			out = append(out, fmt.Sprintf("%c:b%x", p.typ, p.data))
		} else {
			out = append(out, fmt.Sprintf("%c:%s", p.typ, p.data))
		}
		return true
	})
	return out, err
}

func TestDecodePayload4(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []string
		bad        bool
	}{
		{"one message", "4hello", []string{"4:hello"}, false},
		{"several", "4test1\x1e4test2\x1e4test3", []string{"4:test1", "4:test2", "4:test3"}, false},
		{"text and binary", "4hello\x1ebAQIDBA==", []string{"4:hello", "4:b01020304"}, false},
		{"unpadded base64", "bAQIDBA", []string{"4:b01020304"}, false},
		{"every type", "0\x1e1\x1e2\x1e3\x1e4\x1e5\x1e6", []string{"0:", "1:", "2:", "3:", "4:", "5:", "6:"}, false},
		{"ping with data", "2probe", []string{"2:probe"}, false},
		{"utf-8", "4€😀", []string{"4:€😀"}, false},
		{"empty body", "", nil, true},
		{"unknown type", "abc", nil, true},
		{"type 7", "7", nil, true},
		{"bad after good", "4ok\x1ex", []string{"4:ok"}, true},
		{"empty element", "4a\x1e\x1e4b", []string{"4:a"}, true},
		{"trailing separator", "4a\x1e", []string{"4:a"}, true},
		{"bad base64", "b!!!!", nil, true},
		{"base64 bad length", "bAQIDB", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decoded(t, decodePayload4, []byte(tc.body))
			if (err != nil) != tc.bad {
				t.Fatalf("err = %v, want bad=%v", err, tc.bad)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDecodePayload3Text(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []string
		bad        bool
	}{
		{"one message", "6:4hello", []string{"4:hello"}, false},
		{"several", "2:4a2:4b1:2", []string{"4:a", "4:b", "2:"}, false},
		{"base64 binary", "10:b4AQIDBA==", []string{"4:b01020304"}, false},
		{"utf-16 lengths", "4:4€😀", []string{"4:€😀"}, false},
		{"empty element skipped", "0:1:2", []string{"2:"}, false},
		{"empty body", "", nil, true},
		{"no colon", "12", nil, true},
		{"not a number", "a:4x", nil, true},
		{"length too long", "9:4hello", nil, true},
		{"length splits a surrogate pair", "2:4😀", nil, true},
		{"unknown type", "2:x1", nil, true},
		{"bad after good", "2:4a1:x", []string{"4:a"}, true},
		{"bad base64", "4:b4!!", nil, true},
		{"binary without type", "1:b", nil, true},
		{"huge length", "99999999999:4", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decoded(t, decodePayload3Text, []byte(tc.body))
			if (err != nil) != tc.bad {
				t.Fatalf("err = %v, want bad=%v", err, tc.bad)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDecodePayload3Binary(t *testing.T) {
	for _, tc := range []struct {
		name string
		body []byte
		want []string
		bad  bool
	}{
		{"string packet", []byte("\x00\x06\xff4hello"), []string{"4:hello"}, false},
		{"binary packet", []byte("\x01\x05\xff\x04\x01\x02\x03\x04"), []string{"4:b01020304"}, false},
		{"both", []byte("\x00\x01\xff2\x01\x03\xff\x04\xaa\xbb"), []string{"2:", "4:baabb"}, false},
		{"two-digit length", append([]byte("\x00\x01\x01\xff4"), bytes.Repeat([]byte("x"), 10)...), []string{"4:xxxxxxxxxx"}, false},
		{"empty", nil, nil, true},
		{"bad kind", []byte("\x02\x01\xff4"), nil, true},
		{"no terminator", []byte("\x00\x01"), nil, true},
		{"digit over 9", []byte("\x00\x0a\xff4"), nil, true},
		{"length past end", []byte("\x00\x09\xff4hi"), nil, true},
		{"zero length", []byte("\x00\x00\xff"), nil, true},
		{"bad binary type", []byte("\x01\x02\xff\x09x"), nil, true},
		{"bad string packet", []byte("\x00\x01\xffz"), nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decoded(t, decodePayload3Binary, tc.body)
			if (err != nil) != tc.bad {
				t.Fatalf("err = %v, want bad=%v", err, tc.bad)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMessageEncodings(t *testing.T) {
	text := TextMessage([]byte("hé😀"))
	bin := BinaryMessage([]byte{1, 2, 3, 4})
	for _, tc := range []struct {
		name string
		m    *Message
		d    dialect
		want string
	}{
		{"ws text", text, dWS4, "\x81\x084hé😀"},
		{"ws3 text is the same frame", text, dWS3, "\x81\x084hé😀"},
		{"ws4 binary: the raw data", bin, dWS4, "\x82\x04\x01\x02\x03\x04"},
		{"ws3 binary: type byte first", bin, dWS3, "\x82\x05\x04\x01\x02\x03\x04"},
		{"poll4 text", text, dPoll4, "4hé😀"},
		{"poll4 binary", bin, dPoll4, "bAQIDBA=="},
		{"poll3 text: utf-16 length", text, dPoll3T, "5:4hé😀"},
		{"poll3 text binary", bin, dPoll3T, "10:b4AQIDBA=="},
		{"poll3 binary payload, string", text, dPoll3B, "\x00\x08\xff4hé😀"},
		{"poll3 binary payload, binary", bin, dPoll3B, "\x01\x05\xff\x04\x01\x02\x03\x04"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(tc.m.encoded(tc.d)); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	long := TextMessage(bytes.Repeat([]byte("a"), 70000))
	f := long.encoded(dWS4)
	if f[1] != 127 || len(f) != 10+70001 {
		t.Fatalf("64-bit length frame: header %x, len %d", f[:10], len(f))
	}
	mid := TextMessage(bytes.Repeat([]byte("a"), 300))
	if f := mid.encoded(dWS4); f[1] != 126 || f[2] != 1 || f[3] != 45 || len(f) != 4+301 {
		t.Fatalf("16-bit length frame: header %x, len %d", f[:4], len(f))
	}
}

// FuzzDecodePayload feeds the polling payload decoders of both protocols arbitrary bodies:
// they never panic, and what they accept re-encodes to a payload that decodes the same.
func FuzzDecodePayload(f *testing.F) {
	for _, s := range []string{"4hello", "4a\x1ebAQIDBA==", "2probe", "6:4hello", "2:4a1:2", "10:b4AQIDBA==", "\x00\x06\xff4hello", "\x01\x05\xff\x04\x01\x02\x03\x04", ""} {
		for v := range 3 {
			f.Add(uint8(v), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, version uint8, body []byte) {
		decoders := []func([]byte, func(packet) bool) error{decodePayload4, decodePayload3Text, decodePayload3Binary}
		decode := decoders[int(version)%len(decoders)]
		var packets []packet
		err := decode(body, func(p packet) bool {
			packets = append(packets, packet{typ: p.typ, data: bytes.Clone(p.data), binary: p.binary})
			return true
		})
		if err != nil || len(packets) == 0 {
			return
		}
		var again []byte
		for i, p := range packets {
			switch int(version) % len(decoders) {
			case 0:
				if i > 0 {
					again = append(again, payloadSep)
				}
				again = appendPacket4(again, p.typ, p.data, p.binary)
			case 1:
				again = appendPacket3Text(again, p.typ, p.data, p.binary)
			case 2:
				again = appendPacket3Binary(again, p.typ, p.data, p.binary)
			}
		}
		var round []packet
		if err := decode(again, func(p packet) bool {
			round = append(round, packet{typ: p.typ, data: bytes.Clone(p.data), binary: p.binary})
			return true
		}); err != nil {
			if version%3 == 1 && !validUTF8Lengths(packets) {
				return // text whose invalid UTF-8 has no UTF-16 length of its own
			}
			t.Fatalf("re-encoded %q does not decode: %v", again, err)
		}
		if fmt.Sprint(round) != fmt.Sprint(packets) {
			t.Fatalf("round trip: %v became %v", packets, round)
		}
	})
}

func validUTF8Lengths(ps []packet) bool {
	for _, p := range ps {
		if !p.binary && !bytes.Equal([]byte(string([]rune(string(p.data)))), p.data) {
			return false
		}
	}
	return true
}

func TestRuneAtMatchesUTF8(t *testing.T) {
	for _, s := range []string{"a", "é", "€", "😀", "\xff", "\xe0\x80\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf0\x8f\xbf\xbf", "\xc2", "\xe2\x82", "\xc0\xaf"} {
		r, size := utf8.DecodeRuneInString(s)
		units := 1
		if r >= 0x10000 {
			units = 2
		}
		if gs, gu := runeAt(s, 0); gs != size || gu != units {
			t.Errorf("%q: runeAt = %d,%d; utf8 says %d,%d", s, gs, gu, size, units)
		}
	}
}
