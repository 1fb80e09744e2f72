package events

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	sioclient "github.com/zishang520/socket.io/clients/socket/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/parley-chat/parley/auth"
)

// These tests run the real engine behind a chi router, as the app mounts
// it, and talk to it with the Go socket.io client.

type live struct {
	srv      *Server
	url      string
	chats    *fakeChats
	users    *fakeUsers
	sessions *fakeSessions
}

var liveTokens = map[string]auth.Identity{
	"tok-a":  {UserID: userA, SessionID: sessA},
	"tok-a2": {UserID: userA, SessionID: sessA2},
	"tok-b":  {UserID: userB, SessionID: sessB},
}

// recorder wraps the writer the way web's request logging does: Hijack
// only through Unwrap.
type recorder struct{ http.ResponseWriter }

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func startLive(t *testing.T, cfg Config) *live {
	t.Helper()
	if cfg.PingInterval == 0 {
		// The Go client's polling transport queues its POSTs behind the
		// outstanding long-poll GET, so a write waits until the server
		// answers the poll, at the latest with the next ping. (Browser and
		// Node clients post alongside the poll.)
		cfg.PingInterval = 100 * time.Millisecond
	}
	l := &live{chats: newFakeChats(), users: newFakeUsers(), sessions: &fakeSessions{}}
	srv, err := New(cfg, Deps{
		Accounts: &fakeAccounts{tokens: liveTokens}, Chats: l.chats, Users: l.users, Sessions: l.sessions,
	})
	if err != nil {
		t.Fatal(err)
	}
	l.chats.bc = srv
	l.srv = srv
	r := chi.NewRouter()
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			next.ServeHTTP(&recorder{w}, req)
		})
	})
	r.Handle("/socket.io/*", srv.Handler())
	ts := httptest.NewServer(r)
	l.url = ts.URL
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	return l
}

type transportMode int

const (
	pollingOnly transportMode = iota
	websocketOnly
	pollingThenUpgrade
)

func (m transportMode) String() string {
	return [...]string{"polling", "websocket", "upgrade"}[m]
}

// liveClient is a socket.io client with its events on channels.
type liveClient struct {
	t            *testing.T
	sock         *sioclient.Socket
	connected    chan struct{}
	connectErr   chan error
	disconnected chan string
	mu           sync.Mutex
	events       map[string]chan any
}

func dialLive(t *testing.T, l *live, mode transportMode, configure func(*sioclient.Options)) *liveClient {
	t.Helper()
	opts := sioclient.DefaultOptions()
	opts.SetForceNew(true)
	opts.SetReconnection(false)
	opts.SetAutoConnect(false)
	opts.SetTimeout(waitFor)
	switch mode {
	case pollingOnly:
		opts.SetTransports(types.NewSet(sioclient.Polling))
	case websocketOnly:
		opts.SetTransports(types.NewSet(sioclient.WebSocket))
	default:
		opts.SetTransports(types.NewSet(sioclient.Polling, sioclient.WebSocket))
	}
	if configure != nil {
		configure(opts)
	}
	sock, err := sioclient.Connect(l.url, opts)
	if err != nil {
		t.Fatal(err)
	}
	c := &liveClient{
		t: t, sock: sock, connected: make(chan struct{}, 4), connectErr: make(chan error, 4),
		disconnected: make(chan string, 4), events: map[string]chan any{},
	}
	_ = sock.On("connect", func(...any) { c.connected <- struct{}{} })
	_ = sock.On("connect_error", func(args ...any) {
		err, _ := args[0].(error)
		c.connectErr <- err
	})
	_ = sock.On("disconnect", func(args ...any) {
		reason, _ := args[0].(string)
		c.disconnected <- reason
	})
	t.Cleanup(func() { sock.Disconnect() })
	return c
}

func withToken(tok string) func(*sioclient.Options) {
	return func(o *sioclient.Options) { o.SetAuth(map[string]any{"token": tok}) }
}

// on returns the channel a server event arrives on; call before connect.
func (c *liveClient) on(event string) chan any {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.events[event]; ok {
		return ch
	}
	ch := make(chan any, 16)
	c.events[event] = ch
	_ = c.sock.On(types.EventName(event), func(args ...any) {
		if len(args) > 0 {
			ch <- args[0]
		} else {
			ch <- nil
		}
	})
	return ch
}

func (c *liveClient) connect() {
	c.t.Helper()
	c.sock.Connect()
	select {
	case <-c.connected:
	case err := <-c.connectErr:
		c.t.Fatalf("connect_error: %v", err)
	case <-time.After(waitFor):
		c.t.Fatal("timed out connecting")
	}
}

// call emits with an ack and returns the ack's payload as JSON.
func (c *liveClient) call(event string, payload any) map[string]any {
	c.t.Helper()
	ch := make(chan []any, 1)
	if err := c.sock.Emit(event, payload, func(args []any, err error) {
		if err != nil {
			c.t.Errorf("ack error: %v", err)
		}
		ch <- args
	}); err != nil {
		c.t.Fatal(err)
	}
	args := recv(c.t, ch, event+" ack")
	if len(args) != 1 {
		c.t.Fatalf("%s ack carried %d arguments: %v", event, len(args), args)
	}
	return asJSON(c.t, args[0])
}

func TestLiveHandshakeRefused(t *testing.T) {
	l := startLive(t, Config{})
	for _, mode := range []transportMode{pollingOnly, websocketOnly} {
		for name, configure := range map[string]func(*sioclient.Options){
			"no token":  nil,
			"bad token": withToken("forged"),
			"bad query": func(o *sioclient.Options) { o.SetQuery(url.Values{"token": {"forged"}}) },
		} {
			t.Run(mode.String()+"/"+name, func(t *testing.T) {
				c := dialLive(t, l, mode, configure)
				c.sock.Connect()
				select {
				case err := <-c.connectErr:
					if err == nil || err.Error() != "unauthorized" {
						t.Fatalf("connect_error %v, want unauthorized", err)
					}
				case <-c.connected:
					t.Fatal("connected without valid credentials")
				case <-time.After(waitFor):
					t.Fatal("timed out waiting for connect_error")
				}
			})
		}
	}
}

func TestLiveConnectAckAndRooms(t *testing.T) {
	for _, mode := range []transportMode{pollingOnly, websocketOnly, pollingThenUpgrade} {
		t.Run(mode.String(), func(t *testing.T) {
			l := startLive(t, Config{})
			a := dialLive(t, l, mode, withToken("tok-a"))
			aNew := a.on("message:new")
			a.connect()
			b := dialLive(t, l, mode, withToken("tok-b"))
			bNew := b.on("message:new")
			b.connect()

			ack := a.call(EventMessageSend, map[string]any{"chatId": chat1, "text": "hello", "clientMsgId": "m1"})
			if ack["ok"] != true {
				t.Fatalf("send ack %v", ack)
			}
			if msg := ack["message"].(map[string]any); msg["text"] != "hello" || msg["chatId"] != chat1 {
				t.Fatalf("acked message %v", msg)
			}
			// The service broadcast to the chat's room: B is in it, and A,
			// the origin, is left out (its ack came after any event to it).
			if got := recv(t, bNew, "message:new at B"); got != "hello" {
				t.Fatalf("B got %v", got)
			}
			select {
			case got := <-aNew:
				t.Fatalf("the sending socket got its own message:new: %v", got)
			default:
			}

			// A malformed payload is answered and the socket lives on.
			if code := errCode(t, a.call(EventMessageSend, "junk")); code != "invalid_input" {
				t.Fatalf("junk payload answered %q", code)
			}
			_ = a.sock.Emit("no:such:event", map[string]any{"x": 1})
			if body := a.call(EventPresenceGet, map[string]any{"userIds": []string{userA, userB}}); body["ok"] != true || len(body["presence"].([]any)) != 2 {
				t.Fatalf("presence:get %v", body)
			}
			if !l.srv.Online(userA) {
				t.Fatal("Online(userA) is false with a socket connected")
			}
		})
	}
}

func TestLiveTokenSources(t *testing.T) {
	l := startLive(t, Config{})
	for name, configure := range map[string]func(*sioclient.Options){
		"auth":   withToken("tok-a"),
		"query":  func(o *sioclient.Options) { o.SetQuery(url.Values{"token": {"tok-a"}}) },
		"bearer": func(o *sioclient.Options) { o.SetExtraHeaders(http.Header{"Authorization": {"Bearer tok-a"}}) },
		"cookie": func(o *sioclient.Options) { o.SetExtraHeaders(http.Header{"Cookie": {"token=tok-a"}}) },
	} {
		for _, mode := range []transportMode{pollingOnly, websocketOnly} {
			t.Run(name+"/"+mode.String(), func(t *testing.T) {
				c := dialLive(t, l, mode, configure)
				c.connect()
				if body := c.call(EventMessageRead, map[string]any{"chatId": chat1, "seq": 1}); body["ok"] != true {
					t.Fatalf("read ack %v", body)
				}
			})
		}
	}
}

func TestLiveRevocation(t *testing.T) {
	l := startLive(t, Config{})
	for _, mode := range []transportMode{pollingOnly, websocketOnly} {
		t.Run(mode.String(), func(t *testing.T) {
			ended := dialLive(t, l, mode, withToken("tok-a"))
			order := make(chan string, 4)
			_ = ended.sock.On(EventSessionRevoked, func(...any) { order <- EventSessionRevoked })
			_ = ended.sock.On("disconnect", func(args ...any) { order <- "disconnect:" + args[0].(string) })
			ended.connect()
			other := dialLive(t, l, mode, withToken("tok-a2"))
			other.connect()

			start := time.Now()
			l.sessions.end(userA, sessA)
			if got := recv(t, order, "session:revoked"); got != EventSessionRevoked {
				t.Fatalf("first came %q", got)
			}
			if got := recv(t, order, "disconnect"); got != "disconnect:io server disconnect" {
				t.Fatalf("then came %q", got)
			}
			if took := time.Since(start); took > time.Second {
				t.Fatalf("revocation took %v, the contract allows one second", took)
			}
			// The user's other session is untouched.
			if body := other.call(EventMessageRead, map[string]any{"chatId": chat1, "seq": 1}); body["ok"] != true {
				t.Fatalf("other session's ack %v", body)
			}
			other.sock.Disconnect()
		})
	}
}

func TestLivePresence(t *testing.T) {
	l := startLive(t, Config{})
	b := dialLive(t, l, websocketOnly, withToken("tok-b"))
	presence := b.on(EventPresence)
	b.connect()
	a := dialLive(t, l, pollingThenUpgrade, withToken("tok-a"))
	a.connect()
	p := asJSON(t, recv(t, presence, "online"))
	if p["userId"] != userA || p["online"] != true || p["lastSeenAt"] == nil {
		t.Fatalf("presence %v", p)
	}
	a.sock.Disconnect()
	p = asJSON(t, recv(t, presence, "offline"))
	if p["userId"] != userA || p["online"] != false || p["lastSeenAt"] == nil {
		t.Fatalf("presence %v", p)
	}
}

func TestLiveConnectionStateRecovery(t *testing.T) {
	l := startLive(t, Config{})
	c := dialLive(t, l, websocketOnly, withToken("tok-a"))
	updates := c.on("chat:update")
	created := c.on("chat:new")
	c.connect()
	if c.sock.Recovered() {
		t.Fatal("a first connection reports recovered")
	}
	// The client learns an offset only from an event it received.
	l.srv.ToUsers([]string{userA}, "chat:update", map[string]any{"n": 1})
	recv(t, updates, "chat:update before the drop")
	// Drain the lastSeenAt of the connect, to wait for the disconnect's.
	recv(t, l.users.seen, "lastSeenAt on connect")

	// The server drops the transport: a network failure, as the client sees it.
	dropAll(l)
	if reason := recv(t, c.disconnected, "disconnect"); reason == "io server disconnect" || reason == "io client disconnect" {
		t.Fatalf("drop seen as %q", reason)
	}
	recv(t, l.users.seen, "the server's teardown")

	// Missed while away.
	l.srv.ToUsers([]string{userA}, "chat:new", map[string]any{"n": 2})
	c.connect()
	if !c.sock.Recovered() {
		t.Fatal("reconnecting within the window did not recover")
	}
	if got := asJSON(t, recv(t, created, "the missed chat:new")); got["n"] != float64(2) {
		t.Fatalf("replayed %v", got)
	}
	// The recovered socket is back in its rooms and counted online.
	if body := c.call(EventMessageRead, map[string]any{"chatId": chat1, "seq": 1}); body["ok"] != true {
		t.Fatalf("ack after recovery %v", body)
	}
	if !l.srv.Online(userA) {
		t.Fatal("a recovered socket is not online")
	}
}

func TestLiveNoRecoveryAfterRevocation(t *testing.T) {
	l := startLive(t, Config{})
	c := dialLive(t, l, websocketOnly, withToken("tok-a"))
	updates := c.on("chat:update")
	c.connect()
	l.srv.ToUsers([]string{userA}, "chat:update", map[string]any{"n": 1})
	recv(t, updates, "chat:update before the drop")
	recv(t, l.users.seen, "lastSeenAt on connect")
	dropAll(l)
	recv(t, c.disconnected, "disconnect")
	recv(t, l.users.seen, "the server's teardown")
	// The session ends while its socket is away. (The fake accounts still
	// take the token: the restore itself must refuse.)
	l.sessions.end(userA, sessA)
	c.connect()
	if c.sock.Recovered() {
		t.Fatal("an ended session's socket recovered its state")
	}
}

// dropAll closes every socket's transport from the server side, without a
// disconnect packet: what a network failure looks like to the client.
func dropAll(l *live) {
	l.srv.eng.io.Sockets().Sockets().Range(func(_ socket.SocketId, s *socket.Socket) bool {
		s.Conn().Close(false)
		return true
	})
}

func TestLiveEngineIO3(t *testing.T) {
	l := startLive(t, Config{})
	hc := &http.Client{Timeout: waitFor}
	get := func(query string) string {
		t.Helper()
		resp, err := hc.Get(l.url + "/socket.io/?" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", query, resp.StatusCode, b)
		}
		return string(b)
	}
	// poll reads until want shows up: the namespace packet may come in the
	// handshake response or in the next poll.
	poll := func(token, want string) {
		t.Helper()
		body := get("EIO=3&transport=polling&token=" + token)
		open := body[strings.Index(body, "0{")+1:]
		var hs struct {
			Sid string `json:"sid"`
		}
		if err := json.NewDecoder(strings.NewReader(open)).Decode(&hs); err != nil || hs.Sid == "" {
			t.Fatalf("no Engine.IO 3 open packet in %q", body)
		}
		for range 3 {
			if strings.Contains(body, want) {
				return
			}
			body = get("EIO=3&transport=polling&sid=" + url.QueryEscape(hs.Sid))
		}
		t.Fatalf("%q never came; last poll %q", want, body)
	}
	poll("tok-a", ":40")
	poll("forged", `:44"unauthorized"`)
}

func TestLiveCORS(t *testing.T) {
	handshake := func(l *live, origin string) http.Header {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, l.url+"/socket.io/?EIO=4&transport=polling", nil)
		req.Header.Set("Origin", origin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header
	}
	open := startLive(t, Config{})
	if h := handshake(open, "https://anywhere.example"); h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("no origins configured: %v", h)
	}
	strict := startLive(t, Config{CORSOrigins: []string{"https://app.example"}})
	if h := handshake(strict, "https://app.example"); h.Get("Access-Control-Allow-Origin") != "https://app.example" || h.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("configured origin: %v", h)
	}
	if h := handshake(strict, "https://evil.example"); h.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("other origin allowed: %v", h)
	}
}

func TestCloseRefusesNewHandshakes(t *testing.T) {
	l := startLive(t, Config{})
	c := dialLive(t, l, websocketOnly, withToken("tok-a"))
	c.connect()
	l.srv.Close()
	recv(t, c.disconnected, "disconnect at shutdown")
	resp, err := http.Get(l.url + "/socket.io/?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("handshake after Close: %d", resp.StatusCode)
	}
}

// innerAdapter stands for the library's session-aware adapter.
type innerAdapter struct {
	socket.SessionAwareAdapter
	sess *socket.Session
}

func (a innerAdapter) RestoreSession(socket.PrivateSessionId, string) (*socket.Session, error) {
	return a.sess, nil
}

func TestRecoveryRefusedForAnEndedSession(t *testing.T) {
	h := newHarness(t)
	stored := &socket.Session{SessionToPersist: &socket.SessionToPersist{
		Sid: "s1", Pid: "p1", Data: auth.Identity{UserID: userA, SessionID: sessA},
	}}
	a := &guardedAdapter{SessionAwareAdapter: innerAdapter{sess: stored}, s: h.s}
	if got, _ := a.RestoreSession("p1", "o1"); got != stored {
		t.Fatal("a live session was not restored")
	}
	h.s.revoke(userA, []string{sessA})
	if got, _ := a.RestoreSession("p1", "o1"); got != nil {
		t.Fatal("an ended session was restored, missed packets and all")
	}
	odd := &socket.Session{SessionToPersist: &socket.SessionToPersist{Sid: "s2", Pid: "p2", Data: "not ours"}}
	a = &guardedAdapter{SessionAwareAdapter: innerAdapter{sess: odd}, s: h.s}
	if got, _ := a.RestoreSession("p2", "o1"); got != nil {
		t.Fatal("a session without an identity was restored")
	}
}
