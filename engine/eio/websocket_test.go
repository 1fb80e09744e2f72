package eio

import (
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

func TestWebSocketMessages(t *testing.T) {
	ts := newTestServer(t, Options{AllowEIO3: true, MaxHTTPBufferSize: 1000}, true)
	open := func(t *testing.T, eio string) (*wsClient, *recorder) {
		c, err := dialWS(t, ts.url+"?EIO="+eio+"&transport=websocket", nil)
		if err != nil {
			t.Fatal(err)
		}
		if p := c.readText(t); p[0] != '0' {
			t.Fatalf("open packet %q", p)
		}
		return c, ts.nextConn(t)
	}
	for _, tc := range []struct {
		name, eio string
		op        ws.OpCode
		send      string
		delivered string
		wantOp    ws.OpCode
		want      string
	}{
		{"4: text", "4", ws.OpText, "4hello", "hello", ws.OpText, "4hello"},
		{"4: binary is the raw data", "4", ws.OpBinary, "\x01\x02\x03", "b:\x01\x02\x03", ws.OpBinary, "\x01\x02\x03"},
		{"4: empty message", "4", ws.OpText, "4", "", ws.OpText, "4"},
		{"3: text", "3", ws.OpText, "4€", "€", ws.OpText, "4€"},
		{"3: binary has a type byte", "3", ws.OpBinary, "\x04\x01\x02", "b:\x01\x02", ws.OpBinary, "\x04\x01\x02"},
		{"3: base64 binary in a text frame", "3", ws.OpText, "b4AQI=", "b:\x01\x02", ws.OpBinary, "\x04\x01\x02"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, rec := open(t, tc.eio)
			c.send(t, tc.op, tc.send)
			if got := wait(t, rec.msgs, "message"); got != tc.delivered {
				t.Fatalf("delivered %q, want %q", got, tc.delivered)
			}
			if op, p := c.read(t); op != tc.wantOp || p != tc.want {
				t.Fatalf("echo %v %q, want %v %q", op, p, tc.wantOp, tc.want)
			}
		})
	}
	t.Run("a fragmented message is assembled", func(t *testing.T) {
		c, rec := open(t, "4")
		for _, f := range []ws.Frame{
			{Header: ws.Header{OpCode: ws.OpText, Length: 3}, Payload: []byte("4he")},
			{Header: ws.Header{OpCode: ws.OpPing, Fin: true, Length: 1}, Payload: []byte("x")},
			{Header: ws.Header{OpCode: ws.OpContinuation, Fin: true, Length: 3}, Payload: []byte("llo")},
		} {
			if err := ws.WriteFrame(c.conn, ws.MaskFrame(f)); err != nil {
				t.Fatal(err)
			}
		}
		if got := wait(t, rec.msgs, "message"); got != "hello" {
			t.Fatalf("delivered %q", got)
		}
		if op, p := c.read(t); op != ws.OpPong || p != "x" {
			t.Fatalf("got %v %q, want the pong", op, p)
		}
	})
	for _, tc := range []struct {
		name, eio string
		op        ws.OpCode
		send      string
		code      ws.StatusCode
		reason    string
	}{
		{"invalid packet", "4", ws.OpText, "abc", ws.StatusNormalClosure, ReasonParseError},
		{"empty text", "4", ws.OpText, "", ws.StatusNormalClosure, ReasonParseError},
		{"bad base64", "3", ws.OpText, "b4!!", ws.StatusNormalClosure, ReasonParseError},
		{"protocol 3 binary without type", "3", ws.OpBinary, "", ws.StatusNormalClosure, ReasonParseError},
		{"over MaxHTTPBufferSize", "4", ws.OpText, "4" + strings.Repeat("x", 1000), ws.StatusMessageTooBig, ReasonTransportError},
		{"invalid UTF-8", "4", ws.OpText, "4\xff", ws.StatusInvalidFramePayloadData, ReasonTransportError},
		{"close packet", "4", ws.OpText, "1", ws.StatusNormalClosure, ReasonTransportClose},
		{"ping from a protocol 4 client", "4", ws.OpText, "2", ws.StatusNormalClosure, ReasonTransportError},
		{"pong from a protocol 3 client", "3", ws.OpText, "3", ws.StatusNormalClosure, ReasonTransportError},
	} {
		t.Run("closes on "+tc.name, func(t *testing.T) {
			c, rec := open(t, tc.eio)
			c.send(t, tc.op, tc.send)
			if code := c.closeCode(t); code != tc.code {
				t.Fatalf("close code %d, want %d", code, tc.code)
			}
			if reason := wait(t, rec.closed, "close"); reason != tc.reason {
				t.Fatalf("reason %q, want %q", reason, tc.reason)
			}
		})
	}
	t.Run("the client's close frame", func(t *testing.T) {
		c, rec := open(t, "4")
		if err := ws.WriteFrame(c.conn, ws.MaskFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, "")))); err != nil {
			t.Fatal(err)
		}
		if code := c.closeCode(t); code != ws.StatusNormalClosure {
			t.Fatalf("close code %d", code)
		}
		if reason := wait(t, rec.closed, "close"); reason != ReasonTransportClose {
			t.Fatalf("reason %q", reason)
		}
	})
	t.Run("an unmasked frame", func(t *testing.T) {
		c, rec := open(t, "4")
		if err := ws.WriteFrame(c.conn, ws.NewTextFrame([]byte("4x"))); err != nil {
			t.Fatal(err)
		}
		if reason := wait(t, rec.closed, "close"); reason != ReasonTransportError {
			t.Fatalf("reason %q", reason)
		}
	})
}

func TestUpgrade(t *testing.T) {
	ts := newTestServer(t, Options{AllowEIO3: true}, true)
	start := func(t *testing.T, eio string) (string, string, *recorder, *wsClient) {
		sid, _ := ts.openPolling(t, "EIO="+eio)
		rec := ts.nextConn(t)
		c, err := dialWS(t, ts.url+"?EIO="+eio+"&transport=websocket&sid="+sid, nil)
		if err != nil {
			t.Fatal(err)
		}
		return sid, ts.url + "?EIO=" + eio + "&transport=polling&sid=" + sid, rec, c
	}
	for _, eio := range []string{"4", "3"} {
		t.Run("probe, noop, upgrade: protocol "+eio, func(t *testing.T) {
			_, u, rec, c := start(t, eio)
			c.send(t, ws.OpText, "2probe")
			if p := c.readText(t); p != "3probe" {
				t.Fatalf("probe answer %q", p)
			}
			noop := "6"
			if eio == "3" {
				noop = "1:6"
			}
			if res := do(t, "GET", u, ""); res.status != 200 || res.body != noop {
				t.Fatalf("GET during upgrade: %d %q", res.status, res.body)
			}
			c.send(t, ws.OpText, "5")
			c.send(t, ws.OpText, "4hello")
			if p := c.readText(t); p != "4hello" {
				t.Fatalf("echo %q", p)
			}
			if got := wait(t, rec.msgs, "message"); got != "hello" {
				t.Fatalf("delivered %q", got)
			}
			if rec.s.Transport() != "websocket" {
				t.Fatalf("transport %s", rec.s.Transport())
			}
			if res := do(t, "GET", u, ""); res.status != 400 || res.body != `{"code":3,"message":"Bad request"}` {
				t.Fatalf("GET after upgrade: %d %q", res.status, res.body)
			}
			if res := do(t, "POST", u, "4x"); res.status != 400 {
				t.Fatalf("POST after upgrade: %d %q", res.status, res.body)
			}
		})
	}
	t.Run("a GET still waiting when the upgrade completes gets 400", func(t *testing.T) {
		_, u, rec, c := start(t, "4")
		poll := make(chan response, 1)
		go func() { poll <- do(t, "GET", u, "") }()
		waitPollPending(t, rec.s)
		c.send(t, ws.OpText, "2probe")
		c.send(t, ws.OpText, "5")
		if res := wait(t, poll, "GET"); res.status != 400 || res.body != `{"code":3,"message":"Bad request"}` {
			t.Fatalf("GET: %d %q", res.status, res.body)
		}
		if p := c.readText(t); p != "3probe" {
			t.Fatalf("probe answer %q", p)
		}
		c.send(t, ws.OpText, "4hi")
		if p := c.readText(t); p != "4hi" {
			t.Fatalf("echo %q", p)
		}
	})
	t.Run("messages queued during the upgrade go over the websocket", func(t *testing.T) {
		_, _, rec, c := start(t, "4")
		c.send(t, ws.OpText, "2probe")
		if p := c.readText(t); p != "3probe" {
			t.Fatalf("probe answer %q", p)
		}
		if err := rec.s.Send(TextMessage([]byte("queued"))); err != nil {
			t.Fatal(err)
		}
		c.send(t, ws.OpText, "5")
		if p := c.readText(t); p != "4queued" {
			t.Fatalf("got %q", p)
		}
	})
	t.Run("a second websocket for the same session is closed", func(t *testing.T) {
		sid, _, _, c := start(t, "4")
		c.send(t, ws.OpText, "2probe")
		c.send(t, ws.OpText, "5")
		if p := c.readText(t); p != "3probe" {
			t.Fatalf("probe answer %q", p)
		}
		c2, err := dialWS(t, ts.url+"?EIO=4&transport=websocket&sid="+sid, nil)
		if err != nil {
			t.Fatal(err)
		}
		if code := c2.closeCode(t); code != ws.StatusNormalClosure {
			t.Fatalf("close code %d", code)
		}
		c.send(t, ws.OpText, "4hello")
		if p := c.readText(t); p != "4hello" {
			t.Fatalf("echo %q", p)
		}
	})
	t.Run("anything but the probe or upgrade abandons the upgrade; polling goes on", func(t *testing.T) {
		_, u, rec, c := start(t, "4")
		c.send(t, ws.OpText, "4nope")
		if code := c.closeCode(t); code != 0 && code != ws.StatusNormalClosure {
			t.Fatalf("close code %d", code)
		}
		if res := do(t, "POST", u, "4still"); res.status != 200 {
			t.Fatalf("POST: %d", res.status)
		}
		if got := wait(t, rec.msgs, "message"); got != "still" {
			t.Fatalf("delivered %q", got)
		}
	})
}

func TestHeartbeat(t *testing.T) {
	ts := newTestServer(t, Options{AllowEIO3: true, PingInterval: 50 * time.Millisecond, PingTimeout: 500 * time.Millisecond}, false)
	t.Run("4 polling: ping, pong, and the timeout", func(t *testing.T) {
		sid, _ := ts.openPolling(t, "EIO=4")
		rec := ts.nextConn(t)
		u := ts.url + "?EIO=4&transport=polling&sid=" + sid
		for range 3 {
			if res := do(t, "GET", u, ""); res.body != "2" {
				t.Fatalf("GET: %d %q, want a ping", res.status, res.body)
			}
			if res := do(t, "POST", u, "3"); res.status != 200 {
				t.Fatalf("POST pong: %d", res.status)
			}
		}
		if reason := wait(t, rec.closed, "close"); reason != ReasonPingTimeout {
			t.Fatalf("reason %q", reason)
		}
		expectSessionGone(t, u)
	})
	t.Run("4 websocket: ping, pong, and the timeout", func(t *testing.T) {
		c, err := dialWS(t, ts.url+"?EIO=4&transport=websocket", nil)
		if err != nil {
			t.Fatal(err)
		}
		c.readText(t)
		rec := ts.nextConn(t)
		for range 3 {
			if p := c.readText(t); p != "2" {
				t.Fatalf("got %q, want a ping", p)
			}
			c.send(t, ws.OpText, "3")
		}
		if reason := wait(t, rec.closed, "close"); reason != ReasonPingTimeout {
			t.Fatalf("reason %q", reason)
		}
		if code := c.closeCode(t); code != ws.StatusNormalClosure {
			t.Fatalf("close code %d", code)
		}
	})
	t.Run("3: the client pings, the server answers", func(t *testing.T) {
		c, err := dialWS(t, ts.url+"?EIO=3&transport=websocket", nil)
		if err != nil {
			t.Fatal(err)
		}
		c.readText(t)
		rec := ts.nextConn(t)
		for range 3 {
			c.send(t, ws.OpText, "2")
			if p := c.readText(t); p != "3" {
				t.Fatalf("got %q, want a pong", p)
			}
		}
		if reason := wait(t, rec.closed, "close"); reason != ReasonPingTimeout {
			t.Fatalf("reason %q", reason)
		}
	})
	t.Run("3 polling: the pong to a ping", func(t *testing.T) {
		sid, _ := ts.openPolling(t, "EIO=3")
		ts.nextConn(t)
		u := ts.url + "?EIO=3&transport=polling&sid=" + sid
		if res := do(t, "POST", u, "1:2"); res.status != 200 {
			t.Fatalf("POST ping: %d", res.status)
		}
		if res := do(t, "GET", u, ""); res.body != "1:3" {
			t.Fatalf("GET: %d %q", res.status, res.body)
		}
	})
}

func TestClose(t *testing.T) {
	ts := newTestServer(t, Options{}, false)
	t.Run("websocket: queued messages, then the close frame", func(t *testing.T) {
		c, err := dialWS(t, ts.url+"?EIO=4&transport=websocket", nil)
		if err != nil {
			t.Fatal(err)
		}
		c.readText(t)
		rec := ts.nextConn(t)
		_ = rec.s.Send(TextMessage([]byte("a")), TextMessage([]byte("b")))
		rec.s.Close()
		if err := rec.s.Send(TextMessage([]byte("late"))); err != ErrClosed {
			t.Fatalf("Send after Close: %v", err)
		}
		for _, want := range []string{"4a", "4b"} {
			if p := c.readText(t); p != want {
				t.Fatalf("got %q, want %q", p, want)
			}
		}
		if code := c.closeCode(t); code != ws.StatusNormalClosure {
			t.Fatalf("close code %d", code)
		}
		if reason := wait(t, rec.closed, "close"); reason != ReasonForcedClose {
			t.Fatalf("reason %q", reason)
		}
	})
	t.Run("polling: queued messages and the close packet on the next GET", func(t *testing.T) {
		sid, _ := ts.openPolling(t, "EIO=4")
		rec := ts.nextConn(t)
		_ = rec.s.Send(TextMessage([]byte("a")))
		rec.s.Close()
		u := ts.url + "?EIO=4&transport=polling&sid=" + sid
		if res := do(t, "GET", u, ""); res.body != "4a\x1e1" {
			t.Fatalf("GET: %d %q", res.status, res.body)
		}
		if reason := wait(t, rec.closed, "close"); reason != ReasonForcedClose {
			t.Fatalf("reason %q", reason)
		}
	})
	t.Run("Drop: no close packet", func(t *testing.T) {
		c, err := dialWS(t, ts.url+"?EIO=4&transport=websocket", nil)
		if err != nil {
			t.Fatal(err)
		}
		c.readText(t)
		rec := ts.nextConn(t)
		rec.s.Drop()
		if reason := wait(t, rec.closed, "close"); reason != ReasonForcedClose {
			t.Fatalf("reason %q", reason)
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := ws.ReadHeader(c.r); err == nil {
			t.Fatal("a frame after Drop")
		}
	})
	t.Run("Close inside OnMessage: OnClose once, after the message", func(t *testing.T) {
		ts := newTestServer(t, Options{}, false)
		c, err := dialWS(t, ts.url+"?EIO=4&transport=websocket", nil)
		if err != nil {
			t.Fatal(err)
		}
		c.readText(t)
		rec := ts.nextConn(t)
		closedDuring := make(chan bool, 1)
		rec.onMsg = func(r *recorder, _ []byte, _ bool) {
			r.s.Close()
			closedDuring <- len(r.closed) > 0
		}
		c.send(t, ws.OpText, "4bye")
		if wait(t, closedDuring, "OnMessage") {
			t.Fatal("OnClose ran during OnMessage")
		}
		wait(t, rec.msgs, "message")
		if reason := wait(t, rec.closed, "close"); reason != ReasonForcedClose {
			t.Fatalf("reason %q", reason)
		}
		select {
		case r := <-rec.closed:
			t.Fatalf("a second OnClose: %q", r)
		default:
		}
	})
	t.Run("Server.Close closes every socket", func(t *testing.T) {
		ts := newTestServer(t, Options{}, false)
		c, err := dialWS(t, ts.url+"?EIO=4&transport=websocket", nil)
		if err != nil {
			t.Fatal(err)
		}
		c.readText(t)
		wsRec := ts.nextConn(t)
		sid, _ := ts.openPolling(t, "EIO=4")
		pollRec := ts.nextConn(t)
		poll := make(chan response, 1)
		go func() { poll <- do(t, "GET", ts.url+"?EIO=4&transport=polling&sid="+sid, "") }()
		waitPollPending(t, pollRec.s)
		ts.Server.Close()
		if res := wait(t, poll, "GET"); res.body != "1" {
			t.Fatalf("GET: %q", res.body)
		}
		if code := c.closeCode(t); code != ws.StatusNormalClosure {
			t.Fatalf("close code %d", code)
		}
		for _, r := range []*recorder{wsRec, pollRec} {
			if reason := wait(t, r.closed, "close"); reason != ReasonForcedClose {
				t.Fatalf("reason %q", reason)
			}
		}
		if res := do(t, "GET", ts.url+"?EIO=4&transport=polling", ""); res.status != 400 {
			t.Fatalf("handshake after Close: %d", res.status)
		}
	})
}

func TestCORS(t *testing.T) {
	t.Run("any origin", func(t *testing.T) {
		ts := newTestServer(t, Options{}, false)
		res := do(t, "GET", ts.url+"?EIO=4&transport=polling", "", "Origin", "https://example.com")
		if res.header.Get("Access-Control-Allow-Origin") != "*" || res.header.Get("Access-Control-Allow-Credentials") != "" {
			t.Fatalf("headers %v", res.header)
		}
		res = do(t, "OPTIONS", ts.url+"?EIO=4&transport=polling", "", "Origin", "https://example.com",
			"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type,x-custom")
		if res.status != 204 || res.header.Get("Access-Control-Allow-Origin") != "*" ||
			!strings.Contains(strings.ToLower(res.header.Get("Access-Control-Allow-Headers")), "x-custom") {
			t.Fatalf("preflight: %d %v", res.status, res.header)
		}
	})
	t.Run("listed origins, with credentials; websocket Origin checked too", func(t *testing.T) {
		ts := newTestServer(t, Options{CORS: CORS{AllowOrigins: []string{"https://chat.example"}}}, false)
		res := do(t, "GET", ts.url+"?EIO=4&transport=polling", "", "Origin", "https://chat.example")
		if res.header.Get("Access-Control-Allow-Origin") != "https://chat.example" || res.header.Get("Access-Control-Allow-Credentials") != "true" {
			t.Fatalf("headers %v", res.header)
		}
		res = do(t, "GET", ts.url+"?EIO=4&transport=polling", "", "Origin", "https://evil.example")
		if res.header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("headers for another origin %v", res.header)
		}
		if _, err := dialWS(t, ts.url+"?EIO=4&transport=websocket", http.Header{"Origin": {"https://evil.example"}}); err == nil {
			t.Fatal("websocket from another origin accepted")
		}
		c, err := dialWS(t, ts.url+"?EIO=4&transport=websocket", http.Header{"Origin": {"https://chat.example"}})
		if err != nil {
			t.Fatal(err)
		}
		c.readText(t)
	})
	t.Run("cookie", func(t *testing.T) {
		ts := newTestServer(t, Options{CookieName: "io"}, false)
		res := do(t, "GET", ts.url+"?EIO=4&transport=polling", "")
		if c := res.header.Get("Set-Cookie"); !strings.HasPrefix(c, "io=") || !strings.Contains(c, "HttpOnly") {
			t.Fatalf("Set-Cookie %q", c)
		}
	})
}

// TestSlowReader: a websocket client that stops reading is closed at its queue bound, the
// memory it holds stays near the bound, and another socket keeps getting its messages.
func TestSlowReader(t *testing.T) {
	const bound = 256 << 10
	metrics := NewMetrics()
	ts := newTestServer(t, Options{MaxQueueBytes: bound, Metrics: metrics}, false)
	slow, err := dialWS(t, ts.url+"?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	slow.readText(t)
	slowRec := ts.nextConn(t)
	fast, err := dialWS(t, ts.url+"?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	fast.readText(t)
	fastRec := ts.nextConn(t)

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	msg := TextMessage([]byte(strings.Repeat("x", 2000)))
	overflowed := false
	for i := 0; i < 100000 && !overflowed; i++ {
		switch err := slowRec.s.Send(msg); err {
		case nil:
		case ErrQueueOverflow:
			overflowed = true
		default:
			t.Fatalf("Send %d: %v", i, err)
		}
		if i%100 == 0 {
			if err := fastRec.s.Send(msg); err != nil {
				t.Fatalf("the other socket: %v", err)
			}
			if p := fast.readText(t); len(p) != 2001 {
				t.Fatalf("the other socket got %d bytes", len(p))
			}
		}
		slowRec.s.mu.Lock()
		queued := slowRec.s.queueBytes
		slowRec.s.mu.Unlock()
		if queued > bound {
			t.Fatalf("queue holds %d bytes, bound %d", queued, bound)
		}
	}
	if !overflowed {
		t.Fatal("the queue never overflowed")
	}
	if reason := wait(t, slowRec.closed, "close"); reason != ReasonQueueOverflow {
		t.Fatalf("reason %q", reason)
	}
	if got := testutilCounter(metrics.QueueOverflows); got != 1 {
		t.Fatalf("queue overflows counted %v", got)
	}
	if got := testutilCounter(metrics.Handshakes.WithLabelValues("ok")); got != 2 {
		t.Fatalf("handshakes counted %v", got)
	}
	if got := testutilGauge(metrics.SocketsOpen); got != 1 {
		t.Fatalf("sockets open %v", got)
	}
	if got := testutilCounter(metrics.BytesOut.WithLabelValues("websocket")); got == 0 {
		t.Fatalf("bytes out %v", got)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > 8*bound {
		t.Fatalf("heap grew %d bytes for a %d-byte bound", grown, bound)
	}
	if err := fastRec.s.Send(TextMessage([]byte("still here"))); err != nil {
		t.Fatal(err)
	}
	if p := fast.readText(t); p != "4still here" {
		t.Fatalf("the other socket got %q", p)
	}
	_ = wsutil.WriteClientText(fast.conn, []byte("4x"))
}
