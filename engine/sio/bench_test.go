package sio

import (
	"strconv"
	"testing"
)

type benchMessage struct {
	ID        string   `json:"id"`
	ChatID    string   `json:"chatId"`
	Seq       int64    `json:"seq"`
	SenderID  string   `json:"senderId"`
	Text      string   `json:"text"`
	Files     []string `json:"attachments"`
	CreatedAt string   `json:"createdAt"`
}

var benchPayload = benchMessage{
	ID: "65f0c0ffee0000000000abcd", ChatID: "65f0c0ffee0000000000beef", Seq: 12345,
	SenderID: "65f0c0ffee0000000000cafe", Text: "hello, this is a chat message of an ordinary length", Files: []string{},
	CreatedAt: "2026-11-30T21:57:32Z",
}

func BenchmarkEncodeEvent(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		enc, err := encodeEvent("/", NoID, "message:new", []any{benchPayload})
		if err != nil {
			b.Fatal(err)
		}
		_ = enc.frames()
	}
}

func BenchmarkDecodeEvent(b *testing.B) {
	in := []byte(`21["message:send",{"chatId":"65f0c0ffee0000000000beef","text":"hello, this is a chat message","clientMsgId":"m-1"}]`)
	b.ReportAllocs()
	for b.Loop() {
		var d Decoder
		if _, err := d.Add(in, false); err != nil {
			b.Fatal(err)
		}
	}
}

// nullConn counts what it is sent and drops it.
type nullConn struct {
	fakeConn
	n int
}

func (c *nullConn) send(*frames) error { c.n++; return nil }

// BenchmarkBroadcast is one message to a room of 10 out of 1,000 sockets,
// the sender left out: the fan-out of every chat message.
func BenchmarkBroadcast(b *testing.B) {
	s := NewServer(Options{})
	defer s.Close()
	var last *Socket
	s.Sockets().OnConnection(func(sock *Socket) { last = sock })
	ids := make([]string, 1000)
	for i := range ids {
		c := &nullConn{fakeConn: fakeConn{id: "c" + strconv.Itoa(i), proto: 4, changed: make(chan struct{})}}
		s.accept(c, newHandshake(nil, "", nil))
		c.h.OnMessage([]byte("0"), false)
		last.Join("chat:" + strconv.Itoa(i/10))
		ids[i] = last.ID()
	}
	op := s.Sockets().To("chat:7").Except(ids[70])
	b.ReportAllocs()
	for b.Loop() {
		if err := op.Emit("message:new", benchPayload); err != nil {
			b.Fatal(err)
		}
	}
}
