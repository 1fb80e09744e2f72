package sio

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chat/parley/engine/eio"
)

// fakeConn is an Engine.IO connection that records what it is sent.
type fakeConn struct {
	id    string
	proto int

	mu      sync.Mutex
	h       eio.Handler
	out     []string // text as is, binary as "bin:<hex>"
	frames  []*frames
	closed  string
	changed chan struct{}
	// overflowAt > 0 closes the connection from inside that send, as the
	// engine does when a socket's queue passes its bound.
	overflowAt int
	sends      int
}

var connSeq atomic.Int64

func newFakeConn(proto int) *fakeConn {
	return &fakeConn{id: fmt.Sprint("c", connSeq.Add(1)), proto: proto, changed: make(chan struct{})}
}

func (c *fakeConn) ID() string               { return c.id }
func (c *fakeConn) Protocol() int            { return c.proto }
func (c *fakeConn) SetHandler(h eio.Handler) { c.h = h }

func (c *fakeConn) send(f *frames) error {
	c.mu.Lock()
	if c.closed != "" {
		c.mu.Unlock()
		return eio.ErrClosed
	}
	c.sends++
	if c.sends == c.overflowAt {
		c.mu.Unlock()
		c.end("queue overflow")
		return eio.ErrQueueOverflow
	}
	c.frames = append(c.frames, f)
	for _, m := range f.msgs {
		if m.IsBinary() {
			c.out = append(c.out, "bin:"+hex.EncodeToString(m.Data()))
		} else {
			c.out = append(c.out, string(m.Data()))
		}
	}
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	return nil
}

func (c *fakeConn) end(reason string) {
	c.mu.Lock()
	if c.closed != "" {
		c.mu.Unlock()
		return
	}
	c.closed = reason
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	c.h.OnClose(reason)
}

func (c *fakeConn) Close() { c.end("forced close") }
func (c *fakeConn) Drop()  { c.end("transport close") }

func (c *fakeConn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed != ""
}

// take returns and forgets what was sent so far.
func (c *fakeConn) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.out
	c.out = nil
	return out
}

// recv sends the client's messages, text or []byte.
func (c *fakeConn) recv(msgs ...any) {
	for _, m := range msgs {
		switch v := m.(type) {
		case string:
			c.h.OnMessage([]byte(v), false)
		case []byte:
			c.h.OnMessage(v, true)
		}
	}
}

type testServer struct {
	*Server
}

func newTestServer(t *testing.T, opts Options) *testServer {
	t.Helper()
	s := NewServer(opts)
	t.Cleanup(s.Close)
	return &testServer{s}
}

// dial connects a fake client; for protocol 4 (EIO 4) it also sends
// CONNECT with auth (nil: no payload) unless auth is the string "none".
func (s *testServer) dial(t *testing.T, proto int, query string) *fakeConn {
	t.Helper()
	c := newFakeConn(proto)
	r, _ := http.NewRequest(http.MethodGet, "/socket.io/?"+query, nil)
	s.accept(c, newHandshake(r, "127.0.0.1:1", nil))
	return c
}

// connected is a protocol 5 client connected to "/", its frames so far taken.
func (s *testServer) connected(t *testing.T) *fakeConn {
	t.Helper()
	c := s.dial(t, 4, "")
	c.recv("0")
	c.take()
	return c
}

func sidOf(t *testing.T, frame string) string {
	t.Helper()
	if !strings.HasPrefix(frame, `0{"sid":"`) {
		t.Fatalf("frame %q is no CONNECT answer", frame)
	}
	return strings.Split(frame, `"`)[3]
}

// echo is the suites' handler: "message" comes back as "message-back",
// "message-with-ack" is acked with its arguments; "join" joins a room.
func echo(sock *Socket) EventHandler {
	return func(event string, args []any, ack AckFunc) {
		switch event {
		case "message":
			_ = sock.Emit("message-back", args...)
		case "message-with-ack":
			ack(args...)
		case "join":
			sock.Join(args[0].(string))
		}
	}
}

func echoServer(t *testing.T, opts Options) *testServer {
	s := newTestServer(t, opts)
	s.Sockets().OnConnection(func(sock *Socket) {
		_ = sock.Emit("auth", sock.Auth())
		sock.OnEvent(echo(sock))
	})
	s.Of("/custom").OnConnection(func(sock *Socket) { _ = sock.Emit("auth", sock.Auth()) })
	return s
}

func TestConnectV5(t *testing.T) {
	s := echoServer(t, Options{})
	c := s.dial(t, 4, "")
	if got := c.take(); len(got) != 0 {
		t.Fatalf("sent before CONNECT: %v", got)
	}
	c.recv(`0{"token":"123"}`)
	got := c.take()
	sidOf(t, got[0])
	if len(got) != 2 || got[1] != `2["auth",{"token":"123"}]` {
		t.Fatalf("got %v", got)
	}
	c.recv(`0/custom,`)
	got = c.take()
	if !strings.HasPrefix(got[0], `0/custom,{"sid":"`) || got[1] != `2/custom,["auth",{}]` {
		t.Fatalf("custom: %v", got)
	}
	c.recv(`0/random`)
	if got := c.take(); !slices.Equal(got, []string{`4/random,{"message":"Invalid namespace"}`}) {
		t.Fatalf("unknown namespace: %v", got)
	}
	// Leaving /custom keeps the main namespace.
	c.recv(`1/custom,`, `2["message","still here"]`)
	if got := c.take(); !slices.Equal(got, []string{`2["message-back","still here"]`}) {
		t.Fatalf("after leaving /custom: %v", got)
	}
}

func TestConnectV4(t *testing.T) {
	s := echoServer(t, Options{})
	c := s.dial(t, 3, "token=abc&EIO=3&transport=polling")
	got := c.take()
	if len(got) != 2 || got[0] != "0" || !strings.HasPrefix(got[1], `2["auth",{`) || !strings.Contains(got[1], `"token":"abc"`) {
		t.Fatalf("2.x connect: %v", got)
	}
	c.recv(`0/random,`)
	if got := c.take(); !slices.Equal(got, []string{`4/random,"Invalid namespace"`}) {
		t.Fatalf("unknown namespace: %v", got)
	}
	c.recv(`0/custom?x=1,`)
	if got := c.take(); got[0] != "0/custom," || got[1] != `2/custom,["auth",{"x":"1"}]` {
		t.Fatalf("custom: %v", got)
	}
	c.recv(`21["message-with-ack",1]`)
	if got := c.take(); !slices.Equal(got, []string{`31[1]`}) {
		t.Fatalf("ack: %v", got)
	}
}

func TestMiddlewareRefusal(t *testing.T) {
	s := newTestServer(t, Options{})
	s.Sockets().Use(func(sock *Socket) error {
		switch tok, _ := sock.Auth()["token"].(string); tok {
		case "ok":
			return nil
		case "data":
			return &Refusal{Message: "unauthorized", Data: map[string]any{"code": "unauthorized"}}
		case "drop":
			sock.Drop()
			return errors.New("unavailable")
		}
		return errors.New("unauthorized")
	})
	connected := 0
	s.Sockets().OnConnection(func(*Socket) { connected++ })
	for _, c := range []struct {
		proto       int
		query, send string
		want        string
	}{
		{4, "", `0{"token":"bad"}`, `4{"message":"unauthorized"}`},
		{4, "", `0{"token":"data"}`, `4{"data":{"code":"unauthorized"},"message":"unauthorized"}`},
		{3, "token=bad", "", `4"unauthorized"`},
		{3, "token=data", "", `4{"code":"unauthorized"}`},
	} {
		conn := s.dial(t, c.proto, c.query)
		if c.send != "" {
			conn.recv(c.send)
		}
		if got := conn.take(); !slices.Equal(got, []string{c.want}) {
			t.Errorf("%d %q %q: got %v, want %s", c.proto, c.query, c.send, got, c.want)
		}
	}
	drop := s.dial(t, 4, "")
	drop.recv(`0{"token":"drop"}`)
	if !drop.isClosed() {
		t.Fatal("a dropped handshake left the connection open")
	}
	if got := drop.take(); len(got) != 0 {
		t.Fatalf("a dropped handshake was answered: %v", got)
	}
	if connected != 0 || s.Sockets().Len() != 0 {
		t.Fatalf("refused sockets connected: %d, %d registered", connected, s.Sockets().Len())
	}
}

func TestRegisteredBeforeConnect(t *testing.T) {
	s := newTestServer(t, Options{})
	other := s.connected(t)
	s.Sockets().OnConnection(func(sock *Socket) {
		sock.Join("room")
		// Broadcasts reach the socket before its client heard CONNECT, and
		// follow the CONNECT on the wire.
		_ = s.Sockets().To("room").Emit("early", 1)
		_ = sock.Emit("direct")
		if s.Sockets().Socket(sock.ID()) != sock {
			t.Error("not registered in the namespace")
		}
	})
	c := s.dial(t, 4, "")
	c.recv("0")
	got := c.take()
	sidOf(t, got[0])
	if !slices.Equal(got[1:], []string{`2["early",1]`, `2["direct"]`}) {
		t.Fatalf("got %v", got)
	}
	if got := other.take(); len(got) != 0 {
		t.Fatalf("outside the room: %v", got)
	}
}

func TestDisconnectDuringConnection(t *testing.T) {
	s := newTestServer(t, Options{})
	var reasons []string
	s.Sockets().OnConnection(func(sock *Socket) {
		sock.OnDisconnect(func(r string) { reasons = append(reasons, r) })
		_ = sock.Emit("session:revoked", map[string]any{})
		sock.Disconnect(false)
	})
	c := s.dial(t, 4, "")
	c.recv("0")
	got := c.take()
	sidOf(t, got[0])
	if !slices.Equal(got[1:], []string{`2["session:revoked",{}]`, "1"}) {
		t.Fatalf("got %v", got)
	}
	if !slices.Equal(reasons, []string{"server namespace disconnect"}) || s.Sockets().Len() != 0 {
		t.Fatalf("reasons %v, %d left", reasons, s.Sockets().Len())
	}
}

func TestEventsAndAcks(t *testing.T) {
	s := echoServer(t, Options{})
	c := s.connected(t)
	c.recv(`2["message",1,"2",{"3":[true]}]`, `2456["message-with-ack",1,"2",{"3":[false]}]`)
	if got := c.take(); !slices.Equal(got, []string{`2["message-back",1,"2",{"3":[true]}]`, `3456[1,"2",{"3":[false]}]`}) {
		t.Fatalf("got %v", got)
	}
	// Binary both ways, with an ack.
	c.recv(`52-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, []byte{1, 2, 3}, []byte{4, 5, 6})
	c.recv(`52-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, []byte{1, 2, 3}, []byte{4, 5, 6})
	want := []string{
		`52-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, "bin:010203", "bin:040506",
		`62-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`, "bin:010203", "bin:040506",
	}
	if got := c.take(); !slices.Equal(got, want) {
		t.Fatalf("got %v", got)
	}
	// Server to client with an ack.
	sock := s.Sockets().Socket(socketIDs(s.Sockets())[0])
	answered := make(chan []any, 1)
	if err := sock.EmitWithAck("ask", func(args []any) { answered <- args }, "q"); err != nil {
		t.Fatal(err)
	}
	if got := c.take(); !slices.Equal(got, []string{`20["ask","q"]`}) {
		t.Fatalf("got %v", got)
	}
	c.recv(`30["a",1]`)
	if got := <-answered; !slices.Equal(got, []any{"a", 1.0}) {
		t.Fatalf("ack args %v", got)
	}
	c.recv(`30["again"]`) // a second answer to the same id is ignored
}

func socketIDs(n *Namespace) []string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	var out []string
	for id := range n.sockets {
		out = append(out, id)
	}
	return out
}

func TestMalformedClosesOnlyThatConnection(t *testing.T) {
	for _, bad := range [][]any{
		{"4abc"}, {"2{}"}, {`2abc["message-with-ack",1]`}, {`2["disconnect"]`}, {"7"},
		{[]byte{1}}, {`51-["m",{"_placeholder":true,"num":3}]`, []byte{1}},
	} {
		s := echoServer(t, Options{})
		var reason string
		s.Sockets().OnConnection(func(sock *Socket) {
			sock.OnDisconnect(func(r string) { reason = r })
			sock.OnEvent(func(string, []any, AckFunc) {})
		})
		good := s.dial(t, 4, "")
		good.recv("0")
		c := s.dial(t, 4, "")
		c.recv("0")
		c.recv(bad...)
		if !c.isClosed() || reason != "parse error" {
			t.Fatalf("%v: closed %v, reason %q", bad, c.isClosed(), reason)
		}
		good.take()
		if err := s.Sockets().Emit("still"); err != nil {
			t.Fatal(err)
		}
		if good.isClosed() || !slices.Equal(good.take(), []string{`2["still"]`}) {
			t.Fatalf("%v affected another connection", bad)
		}
	}
	// Before any namespace too.
	s := echoServer(t, Options{})
	c := s.dial(t, 4, "")
	c.recv("4abc")
	if !c.isClosed() {
		t.Fatal("an invalid handshake left the connection open")
	}
}

func TestConnectTimeout(t *testing.T) {
	s := echoServer(t, Options{ConnectTimeout: 20 * time.Millisecond})
	c := s.dial(t, 4, "")
	deadline := time.After(5 * time.Second)
	for !c.isClosed() {
		c.mu.Lock()
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatal("a connection without a namespace was kept")
		}
	}
	c2 := s.dial(t, 4, "")
	c2.recv("0")
	if c2.isClosed() {
		t.Fatal("closed though connected")
	}
}

func TestBroadcastRoomsExcept(t *testing.T) {
	s := echoServer(t, Options{})
	conns := map[string]*fakeConn{}
	ids := map[string]string{}
	for _, name := range []string{"a", "b", "c", "old"} {
		proto := 4
		if name == "old" {
			proto = 3
		}
		c := s.dial(t, proto, "")
		if proto == 4 {
			c.recv("0")
		}
		conns[name] = c
	}
	for name, c := range conns {
		if name != "old" {
			ids[name] = sidOf(t, c.take()[0])
		} else {
			c.take()
		}
	}
	conns["a"].recv(`2["join","r1"]`)
	conns["b"].recv(`2["join","r1"]`, `2["join","r2"]`)
	conns["old"].recv(`2["join","r2"]`)
	ns := s.Sockets()
	_ = ns.To("r1", "r2").Except(ids["a"]).Emit("m", map[string]any{"x": 1})
	_ = ns.To("r1").Emit("only-r1")
	_ = ns.Except("r2").Emit("not-r2")
	want := map[string][]string{
		"a":   {`2["only-r1"]`, `2["not-r2"]`},
		"b":   {`2["m",{"x":1}]`, `2["only-r1"]`},
		"c":   {`2["not-r2"]`},
		"old": {`2["m",{"x":1}]`},
	}
	for name, c := range conns {
		if got := c.take(); !slices.Equal(got, want[name]) {
			t.Errorf("%s got %v, want %v", name, got, want[name])
		}
	}
	// One encoding for everyone: both recipients hold the same frames.
	_ = ns.To("r2").Emit("shared")
	b, old := conns["b"], conns["old"]
	if b.frames[len(b.frames)-1] != old.frames[len(old.frames)-1] {
		t.Fatal("a broadcast was encoded per recipient")
	}

	// Remote-style room operations and fetches.
	ns.To("r1").SocketsJoin("r3")
	got, _ := ns.Adapter().Sockets(context.Background(), BroadcastOptions{Rooms: []string{"r3"}})
	slices.Sort(got)
	wantIDs := []string{ids["a"], ids["b"]}
	slices.Sort(wantIDs)
	if !slices.Equal(got, wantIDs) {
		t.Fatalf("r3 holds %v, want %v", got, wantIDs)
	}
	ns.To("r3").Except(ids["b"]).SocketsLeave("r3")
	infos, _ := ns.In("r3").FetchSockets(context.Background())
	if len(infos) != 1 || infos[0].ID != ids["b"] || !slices.Contains(infos[0].Rooms, "r2") {
		t.Fatalf("fetched %+v", infos)
	}
	ns.In("r2").DisconnectSockets(false)
	if got := b.take(); !slices.Equal(got[len(got)-1:], []string{"1"}) {
		t.Fatalf("b got %v", got)
	}
	if ns.Socket(ids["b"]) != nil || ns.Len() != 2 {
		t.Fatalf("%d sockets left", ns.Len())
	}
	ns.In(ids["a"]).DisconnectSockets(true)
	if !conns["a"].isClosed() {
		t.Fatal("close did not close the connection")
	}
}

func TestRecoveryOff(t *testing.T) {
	s := echoServer(t, Options{})
	c := s.dial(t, 4, "")
	c.recv("0")
	hello := c.take()[0]
	if strings.Contains(hello, "pid") {
		t.Fatalf("pid without recovery: %s", hello)
	}
	_ = s.Sockets().Emit("m", "payload")
	if got := c.take(); !slices.Equal(got, []string{`2["m","payload"]`}) {
		t.Fatalf("got %v: an event must carry exactly its arguments", got)
	}
}

func TestRecovery(t *testing.T) {
	var refuse atomic.Bool
	s := newTestServer(t, Options{
		RecoveryWindow: time.Minute,
		AcceptRecovery: func(_ *Socket, data any) bool { return !refuse.Load() && data == "alice" },
	})
	var recovered []bool
	s.Sockets().Use(func(sock *Socket) error { sock.SetData("alice"); return nil })
	s.Sockets().OnConnection(func(sock *Socket) {
		recovered = append(recovered, sock.Recovered())
		sock.Join("room")
	})
	var rest []string
	connect := func(auth string) (*fakeConn, map[string]string) {
		c := s.dial(t, 4, "")
		c.recv("0" + auth)
		f := c.take()
		rest = f[1:]
		u := strings.NewReplacer(`0{`, "", `}`, "", `"`, "").Replace(f[0])
		out := map[string]string{}
		for _, kv := range strings.Split(u, ",") {
			k, v, _ := strings.Cut(kv, ":")
			out[k] = v
		}
		return c, out
	}
	c, hello := connect("")
	if hello["pid"] == "" {
		t.Fatalf("no pid: %v", hello)
	}
	_ = s.Sockets().To("room").Emit("m", 1)
	got := c.take()
	if len(got) != 1 || !strings.HasPrefix(got[0], `2["m",1,"`) {
		t.Fatalf("got %v: with recovery an offset follows the arguments", got)
	}
	offset := strings.TrimSuffix(strings.Split(got[0], `,"`)[1], `"]`)
	c.Drop()
	_ = s.Sockets().To("room").Emit("missed", 2)
	_ = s.Sockets().To("elsewhere").Emit("not-for-it", 3)

	c2, hello2 := connect(fmt.Sprintf(`{"pid":%q,"offset":%q}`, hello["pid"], offset))
	if hello2["sid"] != hello["sid"] || hello2["pid"] != hello["pid"] {
		t.Fatalf("not recovered: %v vs %v", hello2, hello)
	}
	if got := rest; len(got) != 1 || !strings.HasPrefix(got[0], `2["missed",2,"`) {
		t.Fatalf("replayed %v", got)
	}
	if !slices.Equal(recovered, []bool{false, true}) {
		t.Fatalf("recovered %v", recovered)
	}
	// A session is restored once; a refused one connects anew.
	_ = s.Sockets().To("room").Emit("m", 3)
	got = c2.take()
	offset = strings.TrimSuffix(strings.Split(got[0], `,"`)[1], `"]`)
	c2.Drop()
	refuse.Store(true)
	_, hello3 := connect(fmt.Sprintf(`{"pid":%q,"offset":%q}`, hello["pid"], offset))
	if hello3["sid"] == hello["sid"] {
		t.Fatal("a refused recovery got the old socket back")
	}
	// A server disconnect is not recoverable.
	refuse.Store(false)
	c4, hello4 := connect("")
	_ = s.Sockets().To("room").Emit("m", 4)
	got = c4.take()
	offset = strings.TrimSuffix(strings.Split(got[0], `,"`)[1], `"]`)
	s.Sockets().Socket(hello4["sid"]).Disconnect(false)
	if _, hello5 := connect(fmt.Sprintf(`{"pid":%q,"offset":%q}`, hello4["pid"], offset)); hello5["sid"] == hello4["sid"] {
		t.Fatal("recovered after a server disconnect")
	}
}

func TestServerClose(t *testing.T) {
	s := echoServer(t, Options{})
	var reason string
	s.Sockets().OnConnection(func(sock *Socket) { sock.OnDisconnect(func(r string) { reason = r }) })
	c := s.dial(t, 4, "")
	c.recv("0")
	s.Close()
	if !c.isClosed() || reason != "server shutting down" {
		t.Fatalf("closed %v reason %q", c.isClosed(), reason)
	}
	late := newFakeConn(4)
	s.accept(late, newHandshake(nil, "", nil))
	if !late.isClosed() {
		t.Fatal("accepted after Close")
	}
}

func TestQueryAuth(t *testing.T) {
	q, _ := url.ParseQuery("token=a&token=b&x=")
	if got := queryAuth(q); got["token"] != "a" || got["x"] != "" {
		t.Fatalf("%v", got)
	}
}

func TestDropDuringConnection(t *testing.T) {
	s := newTestServer(t, Options{})
	var reason string
	s.Sockets().OnConnection(func(sock *Socket) {
		sock.OnDisconnect(func(r string) { reason = r })
		sock.Drop() // e.g. its rooms could not be looked up: the client retries
	})
	c := s.dial(t, 4, "")
	c.recv("0")
	if got := c.take(); len(got) != 0 || !c.isClosed() {
		t.Fatalf("sent %v, closed %v: want the connection closed and no CONNECT", got, c.isClosed())
	}
	if reason != "transport close" || s.Sockets().Len() != 0 {
		t.Fatalf("reason %q, %d sockets left", reason, s.Sockets().Len())
	}
}

func TestHandshakeKeepsChosenHeaders(t *testing.T) {
	r, _ := http.NewRequest(http.MethodGet, "/socket.io/?EIO=4&token=x", nil)
	r.Header.Set("Cookie", "token=abc")
	r.Header.Set("User-Agent", "test")
	if hs := newHandshake(r, "", []string{"cookie", "Authorization"}); len(hs.Headers) != 1 || hs.Headers.Get("Cookie") != "token=abc" || hs.Query.Get("token") != "x" {
		t.Fatalf("kept %v", hs.Headers)
	}
	if hs := newHandshake(r, "", nil); hs.Headers.Get("User-Agent") != "test" {
		t.Fatalf("kept %v", hs.Headers)
	}
}

func TestOverflowInsideASend(t *testing.T) {
	s := newTestServer(t, Options{})
	var reasons []string
	s.Sockets().OnConnection(func(sock *Socket) {
		sock.OnDisconnect(func(r string) { reasons = append(reasons, r) })
		for range 3 {
			_ = sock.Emit("flood")
		}
	})
	// While the CONNECT and what waited behind it are written.
	c := newFakeConn(4)
	c.overflowAt = 2
	s.accept(c, newHandshake(nil, "", nil))
	c.recv("0")
	// And later, from a broadcast.
	c2 := newFakeConn(4)
	c2.overflowAt = 5
	s.accept(c2, newHandshake(nil, "", nil))
	c2.recv("0")
	_ = s.Sockets().Emit("more")
	if !c.isClosed() || !c2.isClosed() || !slices.Equal(reasons, []string{"queue overflow", "queue overflow"}) {
		t.Fatalf("closed %v %v, reasons %v", c.isClosed(), c2.isClosed(), reasons)
	}
	if s.Sockets().Len() != 0 {
		t.Fatalf("%d sockets left", s.Sockets().Len())
	}
}
