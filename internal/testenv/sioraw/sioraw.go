// Package sioraw is a hand-written Engine.IO 4 / Socket.IO 5 client for
// tests: the frames an npm client puts on the wire, with nothing in between.
// The Go socket.io client (v3.0.6) races on a fast localhost websocket (it
// can miss the engine's open, or send CONNECT twice), so tests that need to
// be exact about what a client sees use this instead.
//
// A Client keeps every frame it receives until a test consumes it, so a test
// can check for the absence of an event without sleeping: wait for an event
// known to come later on the same connection (a barrier), then look at what
// is queued (NoEvent, Drain). Frames on one connection arrive in order, so
// whatever came before the barrier is in the queue by then.
//
// Methods that can fail call t.Fatal, so they belong on the test's own
// goroutine; Start sends from anywhere and its Pending is awaited on the
// test goroutine, which is how a test runs requests concurrently.
package sioraw

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Timeout is how long a Client waits for something before failing the test.
// Generous: a loaded two-core machine running the race detector is slow,
// and a wait only lasts this long when the test fails anyway.
var Timeout = 10 * time.Second

// Client is one Socket.IO connection over a websocket.
type Client struct {
	t  testing.TB
	ws *websocket.Conn

	wmu sync.Mutex // one writer at a time on the websocket

	mu      sync.Mutex
	frames  []string      // received, not yet consumed, in arrival order
	changed chan struct{} // closed (and replaced) when frames grows
	closed  chan struct{} // closed when the connection is gone
	acks    atomic.Int64
}

// Dial opens a websocket to baseURL's /socket.io/ (baseURL is http://host:port)
// and waits for the engine's open packet. query is added to the URL (e.g.
// "token=..."), header goes with the upgrade request (cookies, bearer).
// The namespace is not connected yet: call Connect or MustConnect.
func Dial(t testing.TB, baseURL, query string, header http.Header) *Client {
	t.Helper()
	u := "ws" + strings.TrimPrefix(baseURL, "http") + "/socket.io/?EIO=4&transport=websocket"
	if query != "" {
		u += "&" + query
	}
	ws, resp, err := websocket.DefaultDialer.Dial(u, header)
	if err != nil {
		t.Fatalf("sioraw: dial %s: %v", u, err)
	}
	resp.Body.Close()
	c := &Client{t: t, ws: ws, changed: make(chan struct{}), closed: make(chan struct{})}
	go c.read()
	t.Cleanup(func() { ws.Close() })
	if open := c.Next("open packet"); !strings.HasPrefix(open, "0{") {
		t.Fatalf("sioraw: first frame %q, want an open packet", open)
	}
	return c
}

// read queues every frame and answers pings. It never blocks on the test,
// so a test that is busy elsewhere never stalls the server's writes.
func (c *Client) read() {
	defer close(c.closed)
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		if msg := string(b); msg == "2" {
			c.Send("3") // pong
			continue
		}
		c.mu.Lock()
		c.frames = append(c.frames, string(b))
		close(c.changed)
		c.changed = make(chan struct{})
		c.mu.Unlock()
	}
}

// Send writes one raw Engine.IO frame ("4..." is a Socket.IO packet; "41"
// leaves the namespace). Safe from any goroutine.
func (c *Client) Send(frame string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.WriteMessage(websocket.TextMessage, []byte(frame))
}

// take removes and returns the first queued frame that matches; ok is false
// when none does yet. wait is closed when another frame arrives.
func (c *Client) take(match func(string) bool) (f string, ok bool, wait <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, f := range c.frames {
		if match(f) {
			c.frames = append(c.frames[:i:i], c.frames[i+1:]...)
			return f, true, nil
		}
	}
	return "", false, c.changed
}

// await is Expect without the test: it returns an error instead of failing.
func (c *Client) await(what string, match func(string) bool) (string, error) {
	deadline := time.NewTimer(Timeout)
	defer deadline.Stop()
	for {
		f, ok, wait := c.take(match)
		if ok {
			return f, nil
		}
		select {
		case <-wait:
		case <-c.closed:
			// Frames read before the close are queued already.
			if f, ok, _ := c.take(match); ok {
				return f, nil
			}
			return "", fmt.Errorf("sioraw: connection closed waiting for %s; unconsumed %q", what, c.Frames())
		case <-deadline.C:
			return "", fmt.Errorf("sioraw: timed out after %v waiting for %s; unconsumed %q", Timeout, what, c.Frames())
		}
	}
}

// Expect waits for the first frame that matches and consumes it, leaving
// the others queued.
func (c *Client) Expect(what string, match func(string) bool) string {
	c.t.Helper()
	f, err := c.await(what, match)
	if err != nil {
		c.t.Fatal(err)
	}
	return f
}

// Next waits for the oldest unconsumed frame and consumes it.
func (c *Client) Next(what string) string {
	c.t.Helper()
	return c.Expect(what, func(string) bool { return true })
}

// Frames returns the unconsumed frames, oldest first, without waiting.
func (c *Client) Frames() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.frames...)
}

// Connect sends the namespace CONNECT with auth and returns the server's
// answer: kind "40" (connected) or "44" (refused), and its decoded body.
func (c *Client) Connect(auth map[string]any) (kind string, body map[string]any) {
	c.t.Helper()
	b, _ := json.Marshal(auth)
	c.Send("40" + string(b))
	f := c.Expect("CONNECT answer", func(f string) bool { return strings.HasPrefix(f, "40") || strings.HasPrefix(f, "44") })
	if err := json.Unmarshal([]byte(f[2:]), &body); err != nil {
		c.t.Fatalf("sioraw: CONNECT answer %q: %v", f, err)
	}
	return f[:2], body
}

// MustConnect connects with auth {token} and fails the test if refused.
func (c *Client) MustConnect(token string) map[string]any {
	c.t.Helper()
	kind, body := c.Connect(map[string]any{"token": token})
	if kind != "40" {
		c.t.Fatalf("sioraw: CONNECT refused: %v", body)
	}
	return body
}

// Pending is an event sent with an ack, not yet answered.
type Pending struct {
	c     *Client
	event string
	id    string
}

// Start emits an event with an ack and returns at once; Wait collects the
// answer. Several Starts, on one client or many, put requests in flight
// together, in the order they were started. Safe from any goroutine.
func (c *Client) Start(event string, args ...any) *Pending {
	id := strconv.FormatInt(c.acks.Add(1), 10)
	b, err := json.Marshal(append([]any{event}, args...))
	if err != nil {
		panic(fmt.Sprintf("sioraw: encode %s: %v", event, err))
	}
	c.Send("42" + id + string(b))
	return &Pending{c: c, event: event, id: id}
}

// Wait waits for the ack and returns its arguments.
func (p *Pending) Wait() []any {
	p.c.t.Helper()
	out, err := p.TryWait()
	if err != nil {
		p.c.t.Fatal(err)
	}
	return out
}

// TryWait is Wait returning an error instead of failing the test, for
// goroutines other than the test's.
func (p *Pending) TryWait() ([]any, error) {
	prefix := "43" + p.id + "["
	f, err := p.c.await(p.event+" ack", func(f string) bool { return strings.HasPrefix(f, prefix) })
	if err != nil {
		return nil, err
	}
	var out []any
	if err := json.Unmarshal([]byte(f[len(prefix)-1:]), &out); err != nil {
		return nil, fmt.Errorf("sioraw: ack %q: %v", f, err)
	}
	return out, nil
}

// WaitOne is Wait for the usual single-object answer.
func (p *Pending) WaitOne() map[string]any {
	p.c.t.Helper()
	out := p.Wait()
	if len(out) != 1 {
		p.c.t.Fatalf("sioraw: %s ack carried %v", p.event, out)
	}
	m, ok := out[0].(map[string]any)
	if !ok {
		p.c.t.Fatalf("sioraw: %s ack %v is not an object", p.event, out[0])
	}
	return m
}

// Call emits with an ack and returns the ack's arguments.
func (c *Client) Call(event string, args ...any) []any {
	c.t.Helper()
	return c.Start(event, args...).Wait()
}

// CallOne is Call for the usual single-object answer.
func (c *Client) CallOne(event string, args ...any) map[string]any {
	c.t.Helper()
	return c.Start(event, args...).WaitOne()
}

// Emit sends an event without an ack; array is the packet's JSON array,
// e.g. `["typing",{"chatId":"…","isTyping":true}]`.
func (c *Client) Emit(array string) { c.Send("42" + array) }

func eventPrefix(name string) string { return `42["` + name + `"` }

// decodeEvent returns an event frame's arguments after the name. (Events
// sent while connection-state recovery is on carry the recovery offset as
// a trailing argument.)
func decodeEvent(f string) ([]any, error) {
	var out []any
	if err := json.Unmarshal([]byte(f[2:]), &out); err != nil || len(out) == 0 {
		return nil, fmt.Errorf("sioraw: event %q: %v", f, err)
	}
	return out[1:], nil
}

// Event waits for a server event and returns its arguments.
func (c *Client) Event(name string) []any {
	c.t.Helper()
	return c.EventWhere(name, nil)
}

// EventWhere waits for the first event name whose arguments satisfy match
// (nil matches any), consuming it and leaving the others queued.
func (c *Client) EventWhere(name string, match func(args []any) bool) []any {
	c.t.Helper()
	prefix := eventPrefix(name)
	f := c.Expect(name, func(f string) bool {
		if !strings.HasPrefix(f, prefix) {
			return false
		}
		if match == nil {
			return true
		}
		args, err := decodeEvent(f)
		return err == nil && match(args)
	})
	args, err := decodeEvent(f)
	if err != nil {
		c.t.Fatal(err)
	}
	return args
}

// Payload is EventWhere's first argument as an object, for the usual
// single-object events; match sees that object.
func (c *Client) Payload(name string, match func(map[string]any) bool) map[string]any {
	c.t.Helper()
	args := c.EventWhere(name, func(args []any) bool {
		m, ok := args[0].(map[string]any)
		return ok && (match == nil || match(m))
	})
	return args[0].(map[string]any)
}

// Drain removes and returns the queued events called name whose arguments
// satisfy match (nil matches any), without waiting: use it after a barrier.
func (c *Client) Drain(name string, match func(args []any) bool) [][]any {
	c.t.Helper()
	prefix := eventPrefix(name)
	c.mu.Lock()
	defer c.mu.Unlock()
	var out [][]any
	kept := c.frames[:0:0]
	for _, f := range c.frames {
		if strings.HasPrefix(f, prefix) {
			args, err := decodeEvent(f)
			if err != nil {
				c.t.Error(err)
			} else if match == nil || match(args) {
				out = append(out, args)
				continue
			}
		}
		kept = append(kept, f)
	}
	c.frames = kept
	return out
}

// NoEvent fails the test if an event called name whose arguments satisfy
// match (nil matches any) is queued. It does not wait: call it after a
// barrier, an event known to be sent after the one that must not come.
func (c *Client) NoEvent(name string, match func(args []any) bool) {
	c.t.Helper()
	prefix := eventPrefix(name)
	for _, f := range c.Frames() {
		if !strings.HasPrefix(f, prefix) {
			continue
		}
		if args, err := decodeEvent(f); err == nil && (match == nil || match(args)) {
			c.t.Fatalf("sioraw: unexpected %s event: %s", name, f)
		}
	}
}

// Closed is closed once the connection is gone.
func (c *Client) Closed() <-chan struct{} { return c.closed }

// WaitClosed waits for the server (or the network) to close the connection.
func (c *Client) WaitClosed(what string) {
	c.t.Helper()
	select {
	case <-c.closed:
	case <-time.After(Timeout):
		c.t.Fatalf("sioraw: timed out after %v waiting for %s", Timeout, what)
	}
}

// Close drops the websocket without a goodbye, as a network failure or a
// killed app would; the server sees a transport close.
func (c *Client) Close() {
	_ = c.ws.Close()
}

// PollClient speaks Engine.IO 4 long-polling by hand: one request at a
// time, from the test's goroutine, so nothing races.
type PollClient struct {
	t      testing.TB
	url    string
	header http.Header
	hc     *http.Client
	queued []string
}

// DialPolling makes the polling handshake and returns a client whose
// namespace is not connected yet: Send("0{...}") connects it.
func DialPolling(t testing.TB, baseURL, query string, header http.Header) *PollClient {
	t.Helper()
	p := &PollClient{t: t, url: baseURL + "/socket.io/?EIO=4&transport=polling", header: header, hc: &http.Client{Timeout: Timeout}}
	if query != "" {
		p.url += "&" + query
	}
	frames := p.do(http.MethodGet, "")
	if len(frames) == 0 || !strings.HasPrefix(frames[0], "0{") {
		t.Fatalf("sioraw: polling handshake answered %q", frames)
	}
	var open struct {
		Sid string `json:"sid"`
	}
	if err := json.Unmarshal([]byte(frames[0][1:]), &open); err != nil || open.Sid == "" {
		t.Fatalf("sioraw: open packet %q: %v", frames[0], err)
	}
	p.url += "&sid=" + open.Sid
	p.queued = append(p.queued, frames[1:]...)
	return p
}

// do makes one request; a GET returns its frames (answering pings).
func (p *PollClient) do(method, body string) []string {
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
		p.t.Fatalf("sioraw: polling %s: %v", method, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		p.t.Fatalf("sioraw: polling %s: %d %s", method, resp.StatusCode, b)
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

// Send posts Socket.IO packets, each as an Engine.IO message frame.
func (p *PollClient) Send(packets ...string) {
	p.t.Helper()
	frames := make([]string, len(packets))
	for i, pkt := range packets {
		frames[i] = "4" + pkt
	}
	p.do(http.MethodPost, strings.Join(frames, "\x1e"))
}

// Expect polls until a Socket.IO packet matches, keeping the others, and
// returns it (without the Engine.IO "4").
func (p *PollClient) Expect(what string, match func(string) bool) string {
	p.t.Helper()
	deadline := time.Now().Add(Timeout)
	for {
		for i, f := range p.queued {
			if pkt, ok := strings.CutPrefix(f, "4"); ok && match(pkt) {
				p.queued = append(p.queued[:i], p.queued[i+1:]...)
				return pkt
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("sioraw: timed out waiting for %s; have %q", what, p.queued)
		}
		p.queued = append(p.queued, p.do(http.MethodGet, "")...)
	}
}
