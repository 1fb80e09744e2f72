package eio

import (
	"io"
	"strings"
	"testing"
)

// BenchmarkEncode: what one new message costs to frame, per dialect.
func BenchmarkEncode(b *testing.B) {
	payload := []byte(`42["message:new",{"chatId":"c1","seq":123,"body":"` + strings.Repeat("hé", 60) + `"}]`)
	for _, d := range []struct {
		name string
		d    dialect
	}{{"ws", dWS4}, {"poll4", dPoll4}, {"poll3text", dPoll3T}, {"poll3binary", dPoll3B}} {
		b.Run(d.name, func(b *testing.B) {
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				m := TextMessage(payload)
				_ = m.encoded(d.d)
			}
		})
	}
}

// benchSockets opens n websocket sockets whose clients read and discard everything.
func benchSockets(b *testing.B, n int) []*Socket {
	ts := newTestServer(b, Options{MaxQueueBytes: 64 << 20}, false)
	socks := make([]*Socket, 0, n)
	for range n {
		c, err := dialWS(b, ts.url+"?EIO=4&transport=websocket", nil)
		if err != nil {
			b.Fatal(err)
		}
		go func() { _, _ = io.Copy(io.Discard, c.r) }()
		socks = append(socks, (<-ts.conns).s)
	}
	return socks
}

// BenchmarkWrite: sending one shared message to one websocket (enqueue, coalesced write).
func BenchmarkWrite(b *testing.B) {
	s := benchSockets(b, 1)[0]
	m := TextMessage([]byte(`42["message:new",{"chatId":"c1","seq":123,"body":"hello"}]`))
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Send(m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFanOut: one new message to 100 websockets; it is encoded once for all of them.
func BenchmarkFanOut(b *testing.B) {
	socks := benchSockets(b, 100)
	payload := []byte(`42["message:new",{"chatId":"c1","seq":123,"body":"hello"}]`)
	b.ReportAllocs()
	for b.Loop() {
		m := TextMessage(payload)
		for _, s := range socks {
			if err := s.Send(m); err != nil {
				b.Fatal(err)
			}
		}
	}
}
