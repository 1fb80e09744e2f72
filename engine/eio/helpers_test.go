package eio

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	dto "github.com/prometheus/client_model/go"
)

// recorder is a Handler that reports what its socket received, and can echo it back.
type recorder struct {
	s      *Socket
	echo   bool
	msgs   chan string // "text" or "b:<hex>"-free raw: binary messages are prefixed "b:"
	closed chan string
	onMsg  func(r *recorder, data []byte, binary bool)
}

func (r *recorder) OnMessage(data []byte, binary bool) {
	if r.onMsg != nil {
		r.onMsg(r, data, binary)
	}
	s := string(data)
	if binary {
		s = "b:" + s
	}
	r.msgs <- s
	if r.echo {
		b := []byte(string(data))
		if binary {
			_ = r.s.Send(BinaryMessage(b))
		} else {
			_ = r.s.Send(TextMessage(b))
		}
	}
}

func (r *recorder) OnClose(reason string) { r.closed <- reason }

// testServer is a Server behind a real listener, mounted on /engine.io/ as the reference is.
type testServer struct {
	*Server
	url   string // http://127.0.0.1:port/engine.io/
	conns chan *recorder
}

func newTestServer(t testing.TB, opts Options, echo bool) *testServer {
	t.Helper()
	if opts.PingInterval == 0 {
		opts.PingInterval = time.Minute
		opts.PingTimeout = time.Minute
	}
	ts := &testServer{conns: make(chan *recorder, 100)}
	userConn := opts.OnConnection
	opts.OnConnection = func(s *Socket, r *http.Request) {
		rec := &recorder{s: s, echo: echo, msgs: make(chan string, 1000), closed: make(chan string, 2)}
		s.SetHandler(rec)
		if userConn != nil {
			userConn(s, r)
		}
		ts.conns <- rec
	}
	ts.Server = NewServer(opts)
	mux := http.NewServeMux()
	mux.Handle("/engine.io/", ts.Server)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		ts.Server.Close()
		hs.CloseClientConnections()
		hs.Close()
	})
	ts.url = hs.URL + "/engine.io/"
	return ts
}

func (ts *testServer) nextConn(t *testing.T) *recorder {
	t.Helper()
	select {
	case r := <-ts.conns:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no connection")
		return nil
	}
}

// wait takes the next value from ch, failing after a generous guard (not a synchronisation).
func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

type response struct {
	status int
	body   string
	header http.Header
}

func do(t *testing.T, method, url, body string, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{res.StatusCode, string(b), res.Header}
}

// openPolling makes a polling session and returns its sid and the handshake's body.
func (ts *testServer) openPolling(t *testing.T, query string) (string, string) {
	t.Helper()
	res := do(t, "GET", ts.url+"?"+query+"&transport=polling", "")
	if res.status != 200 {
		t.Fatalf("handshake: %d %s", res.status, res.body)
	}
	body := res.body
	if i := strings.IndexByte(body, ':'); strings.Contains(query, "EIO=3") && i > 0 {
		body = body[i+1:]
	}
	var open struct{ Sid string }
	if err := json.Unmarshal([]byte(strings.SplitN(body[1:], "\x1e", 2)[0]), &open); err != nil || open.Sid == "" {
		t.Fatalf("open packet %q: %v", res.body, err)
	}
	return open.Sid, res.body
}

// wsClient is a minimal websocket client that shows every frame, close frames included.
type wsClient struct {
	conn net.Conn
	r    io.Reader
}

func dialWS(t testing.TB, url string, header http.Header) (*wsClient, error) {
	t.Helper()
	d := ws.Dialer{Header: ws.HandshakeHeaderHTTP(header)}
	conn, br, _, err := d.Dial(context.Background(), strings.Replace(url, "http://", "ws://", 1))
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { conn.Close() })
	c := &wsClient{conn: conn, r: conn}
	if br != nil {
		c.r = br
	}
	return c, nil
}

func (c *wsClient) read(t *testing.T) (ws.OpCode, string) {
	t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	h, err := ws.ReadHeader(c.r)
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(c.r, p); err != nil {
		t.Fatalf("read payload: %v", err)
	}
	return h.OpCode, string(p)
}

// readText reads the next text frame, failing on anything else.
func (c *wsClient) readText(t *testing.T) string {
	t.Helper()
	op, p := c.read(t)
	if op != ws.OpText {
		t.Fatalf("got frame %v %q, want text", op, p)
	}
	return p
}

func (c *wsClient) send(t *testing.T, op ws.OpCode, p string) {
	t.Helper()
	if err := wsutil.WriteClientMessage(c.conn, op, []byte(p)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// closeCode reads until the close frame and returns its status code.
func (c *wsClient) closeCode(t *testing.T) ws.StatusCode {
	t.Helper()
	for {
		op, p := c.read(t)
		if op == ws.OpClose {
			code, _ := ws.ParseCloseFrameData([]byte(p))
			return code
		}
	}
}

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

func testutilCounter(c interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

// expectSessionGone checks that a GET on the session's URL is refused: the session is closed.
func expectSessionGone(t *testing.T, u string) {
	t.Helper()
	if res := do(t, "GET", u, ""); res.status != 400 || res.body != `{"code":1,"message":"Session ID unknown"}` {
		t.Fatalf("GET after the close: %d %q, want 400 Session ID unknown", res.status, res.body)
	}
}

func testutilGauge(g interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	_ = g.Write(&m)
	return m.GetGauge().GetValue()
}
