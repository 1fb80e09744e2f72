package eio

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

func TestHandshakeErrors(t *testing.T) {
	ts := newTestServer(t, Options{
		AllowRequest: func(r *http.Request) error {
			if r.URL.Query().Get("deny") != "" {
				return errors.New(r.URL.Query().Get("deny"))
			}
			return nil
		},
	}, false)
	for _, tc := range []struct {
		name, method, query string
		status              int
		body                string
	}{
		{"no transport", "GET", "EIO=4", 400, `{"code":0,"message":"Transport unknown"}`},
		{"unknown transport", "GET", "EIO=4&transport=abc", 400, `{"code":0,"message":"Transport unknown"}`},
		{"unknown sid", "GET", "EIO=4&transport=polling&sid=nope", 400, `{"code":1,"message":"Session ID unknown"}`},
		{"POST handshake", "POST", "EIO=4&transport=polling", 400, `{"code":2,"message":"Bad handshake method"}`},
		{"PUT handshake", "PUT", "EIO=4&transport=polling", 400, `{"code":2,"message":"Bad handshake method"}`},
		{"websocket without upgrade", "GET", "EIO=4&transport=websocket", 400, `{"code":3,"message":"Bad request"}`},
		{"refused by AllowRequest", "GET", "EIO=4&transport=polling&deny=Forbidden", 403, `{"code":4,"message":"Forbidden"}`},
		{"custom refusal", "GET", "EIO=4&transport=polling&deny=no+%22way%22", 403, `{"code":4,"message":"no \"way\""}`},
		{"no EIO", "GET", "transport=polling", 400, `{"code":5,"message":"Unsupported protocol version"}`},
		{"EIO=abc", "GET", "EIO=abc&transport=polling", 400, `{"code":5,"message":"Unsupported protocol version"}`},
		{"EIO=3 not allowed", "GET", "EIO=3&transport=polling", 400, `{"code":5,"message":"Unsupported protocol version"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := do(t, tc.method, ts.url+"?"+tc.query, "")
			if res.status != tc.status || res.body != tc.body {
				t.Fatalf("got %d %s, want %d %s", res.status, res.body, tc.status, tc.body)
			}
			if ct := res.header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
		})
	}
	t.Run("websocket errors are a 400 with the message", func(t *testing.T) {
		for query, msg := range map[string]string{
			"EIO=4&transport=websocket&sid=nope":  "Session ID unknown",
			"transport=websocket":                 "Unsupported protocol version",
			"EIO=4&transport=websocket&deny=nope": "nope",
		} {
			_, err := dialWS(t, ts.url+"?"+query, nil)
			var rej ws.StatusError
			if !errors.As(err, &rej) || int(rej) != 400 {
				t.Fatalf("%s: got %v, want a 400 refusal (%s)", query, err, msg)
			}
		}
	})
}

func TestOpenPacket(t *testing.T) {
	ts := newTestServer(t, Options{AllowEIO3: true, PingInterval: 300 * time.Millisecond, PingTimeout: 200 * time.Millisecond}, false)
	type open struct {
		Sid          string   `json:"sid"`
		Upgrades     []string `json:"upgrades"`
		PingInterval int      `json:"pingInterval"`
		PingTimeout  int      `json:"pingTimeout"`
		MaxPayload   int      `json:"maxPayload"`
	}
	check := func(t *testing.T, raw string, upgrades []string) {
		var o open
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&o); err != nil {
			t.Fatalf("open packet %q: %v", raw, err)
		}
		if len(o.Sid) != 20 || strings.Join(o.Upgrades, ",") != strings.Join(upgrades, ",") || o.PingInterval != 300 || o.PingTimeout != 200 || o.MaxPayload != 1e6 {
			t.Fatalf("open packet %+v", o)
		}
	}
	t.Run("polling 4", func(t *testing.T) {
		res := do(t, "GET", ts.url+"?EIO=4&transport=polling", "")
		if res.status != 200 || res.body[0] != '0' || res.header.Get("Content-Type") != "text/plain; charset=UTF-8" || res.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("got %d %q %v", res.status, res.body, res.header)
		}
		check(t, res.body[1:], []string{"websocket"})
		ts.nextConn(t)
	})
	t.Run("polling 3: length-prefixed", func(t *testing.T) {
		res := do(t, "GET", ts.url+"?EIO=3&transport=polling", "")
		n, rest, _ := strings.Cut(res.body, ":")
		if res.status != 200 || rest[0] != '0' || n != itoa(len(rest)) {
			t.Fatalf("got %d %q", res.status, res.body)
		}
		check(t, rest[1:], []string{"websocket"})
		if r := ts.nextConn(t); r.s.Protocol() != 3 {
			t.Fatalf("protocol %d", r.s.Protocol())
		}
	})
	t.Run("websocket: no upgrades", func(t *testing.T) {
		c, err := dialWS(t, ts.url+"?EIO=4&transport=websocket", nil)
		if err != nil {
			t.Fatal(err)
		}
		p := c.readText(t)
		check(t, p[1:], []string{})
		if r := ts.nextConn(t); r.s.Transport() != "websocket" {
			t.Fatalf("transport %s", r.s.Transport())
		}
	})
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestPollingMessages(t *testing.T) {
	ts := newTestServer(t, Options{AllowEIO3: true}, true)
	for _, tc := range []struct {
		name, query, post, ctype, want, wantCType string
		got                                       []string
	}{
		{"4: text", "EIO=4", "4hello", "text/plain;charset=UTF-8", "4hello", "text/plain; charset=UTF-8", []string{"hello"}},
		{"4: several", "EIO=4", "4test1\x1e4test2\x1e4test3", "", "4test1\x1e4test2\x1e4test3", "text/plain; charset=UTF-8", []string{"test1", "test2", "test3"}},
		{"4: text and binary", "EIO=4", "4hello\x1ebAQIDBA==", "", "4hello\x1ebAQIDBA==", "text/plain; charset=UTF-8", []string{"hello", "b:\x01\x02\x03\x04"}},
		{"4: utf-8", "EIO=4", "4€😀", "", "4€😀", "text/plain; charset=UTF-8", []string{"€😀"}},
		{"4: open, upgrade and noop from the client mean nothing", "EIO=4", "0\x1e5\x1e6\x1e4x", "", "4x", "text/plain; charset=UTF-8", []string{"x"}},
		{"3: text", "EIO=3", "6:4hello2:4€", "text/plain;charset=UTF-8", "6:4hello2:4€", "text/plain; charset=UTF-8", []string{"hello", "€"}},
		{"3: binary as base64 (b64=1)", "EIO=3&b64=1", "10:b4AQIDBA==", "", "10:b4AQIDBA==", "text/plain; charset=UTF-8", []string{"b:\x01\x02\x03\x04"}},
		{"3: binary payload", "EIO=3", "\x00\x02\xff4a\x01\x05\xff\x04\x01\x02\x03\x04", "application/octet-stream",
			"\x00\x02\xff4a\x01\x05\xff\x04\x01\x02\x03\x04", "application/octet-stream", []string{"a", "b:\x01\x02\x03\x04"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sid, _ := ts.openPolling(t, tc.query)
			rec := ts.nextConn(t)
			u := ts.url + "?" + tc.query + "&transport=polling&sid=" + sid
			res := do(t, "POST", u, tc.post, "Content-Type", tc.ctype)
			if res.status != 200 || res.body != "ok" {
				t.Fatalf("POST: %d %q", res.status, res.body)
			}
			for _, want := range tc.got {
				if got := wait(t, rec.msgs, "message"); got != want {
					t.Fatalf("delivered %q, want %q", got, want)
				}
			}
			res = do(t, "GET", u, "")
			if res.status != 200 || res.body != tc.want || res.header.Get("Content-Type") != tc.wantCType {
				t.Fatalf("GET: %d %q %s, want %q %s", res.status, res.body, res.header.Get("Content-Type"), tc.want, tc.wantCType)
			}
		})
	}
}

func TestPollingMalformedPost(t *testing.T) {
	ts := newTestServer(t, Options{AllowEIO3: true, MaxHTTPBufferSize: 100}, false)
	for _, tc := range []struct {
		name, query, body, ctype string
	}{
		{"4: not a packet", "EIO=4", "abc", ""},
		{"4: empty", "EIO=4", "", ""},
		{"4: bad base64", "EIO=4", "b!!!", ""},
		{"4: bad after good", "EIO=4", "4ok\x1ez", ""},
		{"4: binary body", "EIO=4", "\x01\x02", "application/octet-stream"},
		{"3: no length", "EIO=3", "4hello", ""},
		{"3: length past the end", "EIO=3", "9:4hi", ""},
		{"3: bad base64", "EIO=3", "4:b4!!", ""},
		{"3: bad binary payload", "EIO=3", "\x05\x01\xff4", "application/octet-stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sid, _ := ts.openPolling(t, tc.query)
			rec := ts.nextConn(t)
			u := ts.url + "?" + tc.query + "&transport=polling&sid=" + sid
			res := do(t, "POST", u, tc.body, "Content-Type", tc.ctype)
			if res.status != 400 {
				t.Fatalf("POST: %d %q, want 400", res.status, res.body)
			}
			reason := wait(t, rec.closed, "close")
			if reason != ReasonParseError && reason != ReasonTransportError {
				t.Fatalf("reason %q", reason)
			}
			expectSessionGone(t, u)
		})
	}
	t.Run("oversized body: 413, the session stays", func(t *testing.T) {
		sid, _ := ts.openPolling(t, "EIO=4")
		rec := ts.nextConn(t)
		u := ts.url + "?EIO=4&transport=polling&sid=" + sid
		if res := do(t, "POST", u, "4"+strings.Repeat("x", 100)); res.status != 413 {
			t.Fatalf("POST: %d", res.status)
		}
		if res := do(t, "POST", u, "4fine"); res.status != 200 {
			t.Fatalf("POST after: %d %q", res.status, res.body)
		}
		if got := wait(t, rec.msgs, "message"); got != "fine" {
			t.Fatalf("delivered %q", got)
		}
	})
}

func TestPollingRaces(t *testing.T) {
	ts := newTestServer(t, Options{}, false)
	t.Run("a second GET: 400, the first gets the close packet, the session ends", func(t *testing.T) {
		sid, _ := ts.openPolling(t, "EIO=4")
		rec := ts.nextConn(t)
		u := ts.url + "?EIO=4&transport=polling&sid=" + sid
		first := make(chan response, 1)
		go func() { first <- do(t, "GET", u, "") }()
		waitPollPending(t, rec.s)
		if res := do(t, "GET", u, ""); res.status != 400 {
			t.Fatalf("second GET: %d", res.status)
		}
		if res := wait(t, first, "first GET"); res.status != 200 || res.body != "1" {
			t.Fatalf("first GET: %d %q", res.status, res.body)
		}
		if reason := wait(t, rec.closed, "close"); reason != ReasonTransportError {
			t.Fatalf("reason %q", reason)
		}
		if res := do(t, "GET", u, ""); res.body != `{"code":1,"message":"Session ID unknown"}` {
			t.Fatalf("third GET: %d %q", res.status, res.body)
		}
	})
	t.Run("the client's close with a GET waiting: the GET gets a noop", func(t *testing.T) {
		sid, _ := ts.openPolling(t, "EIO=4")
		rec := ts.nextConn(t)
		u := ts.url + "?EIO=4&transport=polling&sid=" + sid
		poll := make(chan response, 1)
		go func() { poll <- do(t, "GET", u, "") }()
		waitPollPending(t, rec.s)
		if res := do(t, "POST", u, "1"); res.status != 200 || res.body != "ok" {
			t.Fatalf("POST close: %d %q", res.status, res.body)
		}
		if res := wait(t, poll, "GET"); res.status != 200 || res.body != "6" {
			t.Fatalf("GET: %d %q", res.status, res.body)
		}
		if reason := wait(t, rec.closed, "close"); reason != ReasonTransportClose {
			t.Fatalf("reason %q", reason)
		}
		expectSessionGone(t, u)
	})
	t.Run("the client's close before its racing GET: the GET still gets a noop, once", func(t *testing.T) {
		sid, _ := ts.openPolling(t, "EIO=4")
		rec := ts.nextConn(t)
		u := ts.url + "?EIO=4&transport=polling&sid=" + sid
		if res := do(t, "POST", u, "1"); res.status != 200 {
			t.Fatalf("POST close: %d", res.status)
		}
		if reason := wait(t, rec.closed, "close"); reason != ReasonTransportClose {
			t.Fatalf("reason %q", reason)
		}
		if res := do(t, "GET", u, ""); res.status != 200 || res.body != "6" {
			t.Fatalf("racing GET: %d %q", res.status, res.body)
		}
		expectSessionGone(t, u)
	})
	t.Run("a GET that goes away ends the session", func(t *testing.T) {
		sid, _ := ts.openPolling(t, "EIO=4")
		rec := ts.nextConn(t)
		u := ts.url + "?EIO=4&transport=polling&sid=" + sid
		req, _ := http.NewRequest("GET", u, nil)
		ctx, cancel := contextWithCancel()
		req = req.WithContext(ctx)
		go func() {
			waitPollPending(t, rec.s)
			cancel()
		}()
		_, _ = http.DefaultClient.Do(req)
		if reason := wait(t, rec.closed, "close"); reason != ReasonTransportError {
			t.Fatalf("reason %q", reason)
		}
	})
}

// waitPollPending waits until the socket holds a long-poll GET (a state, not a duration).
func waitPollPending(t *testing.T, s *Socket) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		p := s.pollPending
		s.mu.Unlock()
		if p {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("GET never became pending")
		}
		time.Sleep(time.Millisecond)
	}
}
