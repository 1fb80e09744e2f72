package sio

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parley-chat/parley/engine/eio"
)

// These tests run the Socket.IO server on the real Engine.IO server over
// real sockets, as clients of each protocol version write to it (the
// protocol documents' examples): what the fakes above cannot show.

func startWire(t *testing.T) string {
	t.Helper()
	// A poll with nothing to say is answered with the next ping: keep
	// that short; the websocket readers skip pings (no pong is due
	// before the long timeout).
	s := NewServer(Options{Engine: eio.Options{AllowEIO3: true, PingInterval: time.Second, PingTimeout: 10 * time.Second}})
	s.Sockets().OnConnection(func(sock *Socket) { sock.OnEvent(echo(sock)) })
	ts := httptest.NewServer(s)
	t.Cleanup(func() { s.Close(); ts.Close() })
	return ts.URL
}

type wsFrame struct {
	binary bool
	data   string
}

func dialWire(t *testing.T, base, eioVersion string) (*websocket.Conn, func() wsFrame) {
	t.Helper()
	u := "ws" + strings.TrimPrefix(base, "http") + "/socket.io/?EIO=" + eioVersion + "&transport=websocket"
	ws, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	next := func() wsFrame {
		t.Helper()
		for {
			_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
			kind, b, err := ws.ReadMessage()
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if kind == websocket.TextMessage && string(b) == "2" {
				continue // ping
			}
			return wsFrame{binary: kind == websocket.BinaryMessage, data: string(b)}
		}
	}
	if f := next(); !strings.HasPrefix(f.data, "0{") {
		t.Fatalf("open packet %q", f.data)
	}
	return ws, next
}

func send(t *testing.T, ws *websocket.Conn, frames ...any) {
	t.Helper()
	for _, f := range frames {
		var err error
		switch v := f.(type) {
		case string:
			err = ws.WriteMessage(websocket.TextMessage, []byte(v))
		case []byte:
			err = ws.WriteMessage(websocket.BinaryMessage, v)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestWireProtocol5(t *testing.T) {
	base := startWire(t)
	ws, next := dialWire(t, base, "4")
	send(t, ws, "40")
	if f := next(); !strings.HasPrefix(f.data, `40{"sid":"`) {
		t.Fatalf("CONNECT answer %q", f.data)
	}
	send(t, ws, `452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, []byte{1, 2, 3}, []byte{4, 5, 6})
	want := []wsFrame{
		{data: `462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`},
		{binary: true, data: "\x01\x02\x03"},
		{binary: true, data: "\x04\x05\x06"},
	}
	for _, w := range want {
		if f := next(); f != w {
			t.Fatalf("got %+v, want %+v", f, w)
		}
	}
	send(t, ws, "40/nope,")
	if f := next(); f.data != `44/nope,{"message":"Invalid namespace"}` {
		t.Fatalf("unknown namespace: %q", f.data)
	}
	send(t, ws, `42{}`) // malformed: the connection closes
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			break
		}
	}
}

func TestWireProtocol4WebSocket(t *testing.T) {
	base := startWire(t)
	ws, next := dialWire(t, base, "3")
	// A 2.x client is connected to "/" without asking.
	if f := next(); f.data != "40" {
		t.Fatalf("CONNECT %q", f.data)
	}
	send(t, ws, `421["message-with-ack",1,"2"]`)
	if f := next(); f.data != `431[1,"2"]` {
		t.Fatalf("ack %q", f.data)
	}
	// Engine.IO 3 binary frames carry their packet type in a first byte.
	send(t, ws, `451-["message",{"_placeholder":true,"num":0}]`, []byte{4, 1, 2, 3})
	if f := next(); f.data != `451-["message-back",{"_placeholder":true,"num":0}]` {
		t.Fatalf("binary event %q", f.data)
	}
	if f := next(); !f.binary || f.data != "\x04\x01\x02\x03" {
		t.Fatalf("attachment %+v", f)
	}
}

func TestWireProtocol4Polling(t *testing.T) {
	base := startWire(t)
	hc := &http.Client{Timeout: 10 * time.Second}
	do := func(method, url, body string) string {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", method, resp.StatusCode, b)
		}
		return string(b)
	}
	frame := func(pkt string) string { return strconv.Itoa(len(pkt)) + ":" + pkt }
	body := do(http.MethodGet, base+"/socket.io/?EIO=3&transport=polling", "")
	i := strings.Index(body, `"sid":"`)
	if i < 0 {
		t.Fatalf("handshake %q", body)
	}
	sid := body[i+7 : i+7+strings.Index(body[i+7:], `"`)]
	url := base + "/socket.io/?EIO=3&transport=polling&sid=" + sid
	until := func(body, want string) {
		t.Helper()
		for range 5 {
			if strings.Contains(body, want) {
				return
			}
			body = do(http.MethodGet, url, "")
		}
		t.Fatalf("%q never came; last poll %q", want, body)
	}
	until(body, frame("40"))
	do(http.MethodPost, url, frame(`427["message",{"a":[1,true]}]`)+frame(`428["message-with-ack","x"]`))
	var got bytes.Buffer
	for range 5 {
		got.WriteString(do(http.MethodGet, url, ""))
		if strings.Contains(got.String(), frame(`438["x"]`)) {
			break
		}
	}
	if s := got.String(); !strings.Contains(s, frame(`42["message-back",{"a":[1,true]}]`)) || !strings.Contains(s, frame(`438["x"]`)) {
		t.Fatalf("polls answered %q", s)
	}
}
