package events

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// rawClient speaks Engine.IO 4 / Socket.IO 5 over a websocket by hand: the
// frames an npm client puts on the wire, with nothing in between. The Go
// client races on a fast localhost websocket (it can miss the engine's
// open, or send CONNECT twice), so the websocket tests use this instead.
type rawClient struct {
	t      *testing.T
	ws     *websocket.Conn
	wmu    sync.Mutex
	frames chan string
	closed chan struct{}
	queued []string // frames read while waiting for another
}

func dialRaw(t *testing.T, l *live, query string, header http.Header) *rawClient {
	t.Helper()
	u := "ws" + strings.TrimPrefix(l.url, "http") + "/socket.io/?EIO=4&transport=websocket"
	if query != "" {
		u += "&" + query
	}
	ws, resp, err := websocket.DefaultDialer.Dial(u, header)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	resp.Body.Close()
	c := &rawClient{t: t, ws: ws, frames: make(chan string, 64), closed: make(chan struct{})}
	go c.read()
	t.Cleanup(func() { ws.Close() })
	if open := c.next("open packet"); !strings.HasPrefix(open, "0{") {
		t.Fatalf("first frame %q, want an open packet", open)
	}
	return c
}

func (c *rawClient) read() {
	defer close(c.closed)
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		if msg := string(b); msg == "2" {
			c.send("3") // pong
		} else {
			c.frames <- msg
		}
	}
}

func (c *rawClient) send(frame string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.WriteMessage(websocket.TextMessage, []byte(frame))
}

func (c *rawClient) next(what string) string {
	c.t.Helper()
	select {
	case f := <-c.frames:
		return f
	case <-c.closed:
		c.t.Fatalf("connection closed waiting for %s", what)
	case <-time.After(waitFor):
		c.t.Fatalf("timed out waiting for %s", what)
	}
	return ""
}

// expect returns the first frame that matches, keeping the others.
func (c *rawClient) expect(what string, match func(string) bool) string {
	c.t.Helper()
	for i, f := range c.queued {
		if match(f) {
			c.queued = append(c.queued[:i], c.queued[i+1:]...)
			return f
		}
	}
	for {
		f := c.next(what)
		if match(f) {
			return f
		}
		c.queued = append(c.queued, f)
	}
}

// connect sends the namespace CONNECT and returns the server's answer:
// "40{...}" or "44{...}" decoded.
func (c *rawClient) connect(auth map[string]any) (string, map[string]any) {
	c.t.Helper()
	b, _ := json.Marshal(auth)
	c.send("40" + string(b))
	f := c.expect("CONNECT answer", func(f string) bool { return strings.HasPrefix(f, "40") || strings.HasPrefix(f, "44") })
	var body map[string]any
	if err := json.Unmarshal([]byte(f[2:]), &body); err != nil {
		c.t.Fatalf("CONNECT answer %q: %v", f, err)
	}
	return f[:2], body
}

func (c *rawClient) mustConnect(token string) map[string]any {
	c.t.Helper()
	kind, body := c.connect(map[string]any{"token": token})
	if kind != "40" {
		c.t.Fatalf("CONNECT refused: %v", body)
	}
	return body
}

var ackIDs struct {
	sync.Mutex
	n int
}

// call emits with an ack and returns the ack's arguments.
func (c *rawClient) call(event string, args ...any) []any {
	c.t.Helper()
	ackIDs.Lock()
	ackIDs.n++
	id := strconv.Itoa(ackIDs.n)
	ackIDs.Unlock()
	b, _ := json.Marshal(append([]any{event}, args...))
	c.send("42" + id + string(b))
	f := c.expect(event+" ack", func(f string) bool { return strings.HasPrefix(f, "43"+id+"[") })
	var out []any
	if err := json.Unmarshal([]byte(f[len("43"+id):]), &out); err != nil {
		c.t.Fatalf("ack %q: %v", f, err)
	}
	return out
}

// callOne is call for the usual single-object answer.
func (c *rawClient) callOne(event string, args ...any) map[string]any {
	c.t.Helper()
	out := c.call(event, args...)
	if len(out) != 1 {
		c.t.Fatalf("%s ack carried %v", event, out)
	}
	m, ok := out[0].(map[string]any)
	if !ok {
		c.t.Fatalf("%s ack %v is not an object", event, out[0])
	}
	return m
}

// emit sends an event without an ack; frame is the JSON array.
func (c *rawClient) emit(array string) { c.send("42" + array) }

// event waits for a server event and returns its arguments.
func (c *rawClient) event(name string) []any {
	c.t.Helper()
	prefix := `42["` + name + `"`
	f := c.expect(name, func(f string) bool { return strings.HasPrefix(f, prefix) })
	var out []any
	if err := json.Unmarshal([]byte(f[2:]), &out); err != nil {
		c.t.Fatalf("event %q: %v", f, err)
	}
	return out[1:]
}

// waitClosed waits for the server to close the connection.
func (c *rawClient) waitClosed(what string) {
	c.t.Helper()
	for {
		select {
		case <-c.frames:
		case <-c.closed:
			return
		case <-time.After(waitFor):
			c.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// pollClient speaks Engine.IO 4 long-polling by hand: one request at a
// time, from the test's goroutine, so nothing races.
type pollClient struct {
	t      *testing.T
	url    string
	header http.Header
	hc     *http.Client
	queued []string
}

func dialPoll(t *testing.T, l *live, query string, header http.Header) *pollClient {
	t.Helper()
	p := &pollClient{t: t, url: l.url + "/socket.io/?EIO=4&transport=polling", header: header, hc: &http.Client{Timeout: waitFor}}
	if query != "" {
		p.url += "&" + query
	}
	frames := p.do(http.MethodGet, "")
	if len(frames) == 0 || !strings.HasPrefix(frames[0], "0{") {
		t.Fatalf("handshake answered %q", frames)
	}
	var open struct {
		Sid string `json:"sid"`
	}
	if err := json.Unmarshal([]byte(frames[0][1:]), &open); err != nil || open.Sid == "" {
		t.Fatalf("open packet %q: %v", frames[0], err)
	}
	p.url += "&sid=" + open.Sid
	p.queued = append(p.queued, frames[1:]...)
	return p
}

// do makes one request; a GET returns its frames (answering pings).
func (p *pollClient) do(method, body string) []string {
	p.t.Helper()
	req, err := http.NewRequest(method, p.url, strings.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	for k, vs := range p.header {
		req.Header[k] = vs
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		p.t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		p.t.Fatalf("%s: %d %s", method, resp.StatusCode, b)
	}
	if method == http.MethodPost {
		return nil
	}
	var out []string
	for _, f := range strings.Split(string(b), "\x1e") {
		if f == "2" {
			p.do(http.MethodPost, "3")
			continue
		}
		out = append(out, f)
	}
	return out
}

// send posts Engine.IO message frames (Socket.IO packets).
func (p *pollClient) send(packets ...string) {
	p.t.Helper()
	for i := range packets {
		packets[i] = "4" + packets[i]
	}
	p.do(http.MethodPost, strings.Join(packets, "\x1e"))
}

// expect polls until a Socket.IO packet matches, keeping the others.
func (p *pollClient) expect(what string, match func(string) bool) string {
	p.t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		for i, f := range p.queued {
			if pkt, ok := strings.CutPrefix(f, "4"); ok && match(pkt) {
				p.queued = append(p.queued[:i], p.queued[i+1:]...)
				return pkt
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out waiting for %s; have %q", what, p.queued)
		}
		p.queued = append(p.queued, p.do(http.MethodGet, "")...)
	}
}
