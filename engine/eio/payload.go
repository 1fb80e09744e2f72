package eio

import (
	"bytes"
	"encoding/base64"
	"errors"
)

// packet is one decoded Engine.IO packet. Its data aliases the decoder's input (or a buffer
// that lives as long as it), so it is valid only during the callback that receives it.
type packet struct {
	typ    byte // pOpen..pNoop
	data   []byte
	binary bool
}

// errParse is the reference parser's "parser error": the payload is not valid.
var errParse = errors.New("eio: parse error")

const payloadSep = 0x1e // protocol 4 separates polling packets with the record separator

// decodePacketText decodes one packet sent as text (a websocket text frame, or a polling
// payload element). Protocol 4 carries binary as "b<base64>", protocol 3 as "b<type><base64>".
func decodePacketText(b []byte, protocol int) (packet, error) {
	if len(b) == 0 {
		return packet{}, errParse
	}
	if b[0] == 'b' {
		b = b[1:]
		typ := byte(pMessage)
		if protocol == 3 {
			if len(b) == 0 || !validType(b[0]) {
				return packet{}, errParse
			}
			typ, b = b[0], b[1:]
		}
		data, err := decodeBase64(b)
		if err != nil {
			return packet{}, errParse
		}
		return packet{typ: typ, data: data, binary: true}, nil
	}
	if !validType(b[0]) {
		return packet{}, errParse
	}
	return packet{typ: b[0], data: b[1:]}, nil
}

// decodeBase64 accepts padded and unpadded base64, as the reference's Buffer.from does.
func decodeBase64(b []byte) ([]byte, error) {
	enc := base64.StdEncoding
	if len(b)%4 != 0 {
		enc = base64.RawStdEncoding
	}
	out := make([]byte, enc.DecodedLen(len(b)))
	n, err := enc.Decode(out, b)
	return out[:n], err
}

func validType(c byte) bool { return c >= pOpen && c <= pNoop }

// decodePayload4 decodes a protocol 4 polling payload: packets separated by 0x1e. Like the
// reference, it yields the packets before an invalid one, then returns errParse. yield returns
// false to stop early.
func decodePayload4(body []byte, yield func(packet) bool) error {
	for {
		i := bytes.IndexByte(body, payloadSep)
		elem := body
		if i >= 0 {
			elem = body[:i]
		}
		p, err := decodePacketText(elem, 4)
		if err != nil {
			return err
		}
		if !yield(p) || i < 0 {
			return nil
		}
		body = body[i+1:]
	}
}

// decodePayload3Text decodes a protocol 3 text payload: "<length>:<packet>" repeated, the
// length in UTF-16 code units. Packets before an error are yielded.
func decodePayload3Text(body []byte, yield func(packet) bool) error {
	if len(body) == 0 {
		return errParse
	}
	for len(body) > 0 {
		n, digits := 0, 0
		for digits < len(body) && body[digits] != ':' {
			c := body[digits]
			if c < '0' || c > '9' || digits >= 9 {
				return errParse
			}
			n = n*10 + int(c-'0')
			digits++
		}
		if digits == 0 || digits == len(body) {
			return errParse
		}
		body = body[digits+1:]
		size, ok := utf16Prefix(body, n)
		if !ok {
			return errParse
		}
		if size > 0 {
			p, err := decodePacketText(body[:size], 3)
			if err != nil {
				return err
			}
			if !yield(p) {
				return nil
			}
		}
		body = body[size:]
	}
	return nil
}

// utf16Prefix says how many bytes of b hold its first n UTF-16 code units.
func utf16Prefix(b []byte, n int) (int, bool) {
	i := 0
	for n > 0 {
		if i >= len(b) {
			return 0, false
		}
		size, units := runeAt(b, i)
		if units > n {
			return 0, false // the length splits a surrogate pair
		}
		i += size
		n -= units
	}
	return i, true
}

// decodePayload3Binary decodes a protocol 3 binary payload (application/octet-stream): each
// element is 0 (string) or 1 (binary), the length as one byte per decimal digit, 255, then the
// packet (a string packet, or a type byte and the data).
func decodePayload3Binary(body []byte, yield func(packet) bool) error {
	if len(body) == 0 {
		return errParse
	}
	for len(body) > 0 {
		kind := body[0]
		if kind > 1 {
			return errParse
		}
		n, i := 0, 1
		for ; i < len(body) && body[i] != 255; i++ {
			if body[i] > 9 || i > 9 {
				return errParse
			}
			n = n*10 + int(body[i])
		}
		if i == 1 || i == len(body) || n == 0 || n > len(body)-i-1 {
			return errParse
		}
		elem := body[i+1 : i+1+n]
		body = body[i+1+n:]
		var p packet
		if kind == 0 {
			var err error
			if p, err = decodePacketText(elem, 3); err != nil {
				return err
			}
		} else {
			if elem[0] > 6 {
				return errParse
			}
			p = packet{typ: '0' + elem[0], data: elem[1:], binary: true}
		}
		if !yield(p) {
			return nil
		}
	}
	return nil
}
