package events

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gorilla/websocket"

	"github.com/parley-chat/parley/auth"
	"github.com/parley-chat/parley/engine/sio"
	"github.com/parley-chat/parley/internal/testenv/sioraw"
)

// These tests run the real engine behind a chi router, as the app mounts
// it, and talk to it with raw frames (sioraw): exactly what npm clients
// put on the wire.

type live struct {
	srv      *Server
	accounts *fakeAccounts
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
		// An idle long-poll is answered at the latest with the next ping:
		// short pings keep the polling tests' empty polls short.
		cfg.PingInterval = 100 * time.Millisecond
	}
	l := &live{chats: newFakeChats(), users: newFakeUsers(), sessions: &fakeSessions{}, accounts: &fakeAccounts{tokens: maps.Clone(liveTokens)}}
	srv, err := New(cfg, Deps{
		Accounts: l.accounts, Chats: l.chats, Users: l.users, Sessions: l.sessions,
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

func TestLiveHandshakeRefused(t *testing.T) {
	l := startLive(t, Config{})
	// What socket.io-client 2.x sends: the token in the query, no auth.
	for name, query := range map[string]string{"empty token": "token=", "bad query": "token=forged"} {
		t.Run("query/"+name, func(t *testing.T) {
			c := sioraw.Dial(t, l.url, query, nil)
			kind, body := c.Connect(nil)
			if kind != "44" || body["message"] != "unauthorized" {
				t.Fatalf("answer %s %v, want 44 unauthorized", kind, body)
			}
		})
	}
	for name, auth := range map[string]map[string]any{"empty token": {"token": ""}, "bad token": {"token": "forged"}, "token not a string": {"token": 12}} {
		t.Run("websocket/"+name, func(t *testing.T) {
			c := sioraw.Dial(t, l.url, "", nil)
			kind, body := c.Connect(auth)
			if kind != "44" || body["message"] != "unauthorized" {
				t.Fatalf("answer %s %v, want 44 unauthorized", kind, body)
			}
		})
	}
	t.Run("polling", func(t *testing.T) {
		p := sioraw.DialPolling(t, l.url, "", nil)
		p.Send(`0{"token":"forged"}`)
		if got := p.Expect("CONNECT answer", func(f string) bool { return strings.HasPrefix(f, "4") }); got != `4{"data":{"code":"unauthorized"},"message":"unauthorized"}` {
			t.Fatalf("answer %q", got)
		}
	})
}

// TestLiveNoCredentialsAwaitSetup: a handshake without any credential is
// let in to wait for the MERN app's setup (mern.go): anything else first,
// or nothing in time, ends it; setup with a good token binds it.
func TestLiveNoCredentialsAwaitSetup(t *testing.T) {
	l := startLive(t, Config{SetupTimeout: 200 * time.Millisecond})
	t.Run("nothing in time", func(t *testing.T) {
		c := sioraw.Dial(t, l.url, "", nil)
		if kind, body := c.Connect(nil); kind != "40" {
			t.Fatalf("answer %s %v, want 40", kind, body)
		}
		c.Expect("the server's DISCONNECT", func(f string) bool { return f == "41" })
	})
	t.Run("another event first", func(t *testing.T) {
		c := sioraw.Dial(t, l.url, "", nil)
		c.Connect(nil)
		c.Emit(`["message:send",{"chatId":"` + chat1 + `","text":"x"}]`)
		c.Expect("the server's DISCONNECT", func(f string) bool { return f == "41" })
	})
	t.Run("setup", func(t *testing.T) {
		c := sioraw.Dial(t, l.url, "", nil)
		c.Connect(nil)
		c.Emit(`["setup",{"_id":"` + userA + `","token":"tok-a"}]`)
		c.Event(MERNConnected)
	})
}

func TestLiveClientFlow(t *testing.T) {
	l := startLive(t, Config{})
	b := sioraw.Dial(t, l.url, "", nil)
	b.MustConnect("tok-b")
	a := sioraw.Dial(t, l.url, "", nil)
	a.MustConnect("tok-a")
	if p := b.Event(EventPresence)[0].(map[string]any); p["userId"] != userA || p["online"] != true || p["lastSeenAt"] == nil {
		t.Fatalf("presence %v", p)
	}

	ack := a.CallOne(EventMessageSend, map[string]any{"chatId": chat1, "text": "hello", "clientMsgId": "m1"})
	if ack["ok"] != true {
		t.Fatalf("send ack %v", ack)
	}
	if msg := ack["message"].(map[string]any); msg["text"] != "hello" || msg["chatId"] != chat1 || msg["clientMsgId"] != "m1" {
		t.Fatalf("acked message %v", msg)
	}
	// The service broadcast to the chat's room: B is in it, and A, the
	// origin, is left out (its ack came after any event to it).
	if got := b.Event("message:new"); got[0] != "hello" || len(got) != 1 {
		t.Fatalf("B got %v: one argument, the payload", got)
	}
	a.NoEvent("message:new", nil)
	// A malformed payload is answered and the socket lives on.
	if code := errCode(t, a.CallOne(EventMessageSend, "junk")); code != "invalid_input" {
		t.Fatalf("junk payload answered %q", code)
	}
	a.Emit(`["no:such:event",{"x":1}]`)
	// The socket still answers: presence for its peer (not for itself).
	if body := a.CallOne(EventPresenceGet, map[string]any{"userIds": []string{userA, userB}}); body["ok"] != true || len(body["presence"].([]any)) != 1 {
		t.Fatalf("presence:get %v", body)
	}
	if !l.srv.Online(userA) {
		t.Fatal("Online(userA) is false with a socket connected")
	}

	// Revocation: session:revoked, then a server disconnect, within a second.
	start := time.Now()
	l.sessions.end(userA, sessA)
	if f := a.Next("session:revoked"); f != `42["session:revoked",{}]` {
		t.Fatalf("first came %q", f)
	}
	if f := a.Next("disconnect"); f != "41" {
		t.Fatalf("then came %q, want a namespace DISCONNECT (the client's \"io server disconnect\")", f)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("revocation took %v, the contract allows one second", took)
	}
	if p := b.Event(EventPresence)[0].(map[string]any); p["userId"] != userA || p["online"] != false {
		t.Fatalf("presence %v", p)
	}
}

func TestLivePolling(t *testing.T) {
	l := startLive(t, Config{})
	for name, c := range map[string]struct {
		query  string
		header http.Header
		auth   string
	}{
		"auth":   {auth: `{"token":"tok-a"}`},
		"query":  {query: "token=tok-a"},
		"bearer": {header: http.Header{"Authorization": {"Bearer tok-a"}}},
		"cookie": {header: http.Header{"Cookie": {"token=tok-a"}}},
	} {
		t.Run(name, func(t *testing.T) {
			p := sioraw.DialPolling(t, l.url, c.query, c.header)
			p.Send("0" + c.auth)
			if got := p.Expect("CONNECT answer", func(f string) bool { return strings.HasPrefix(f, "0") || strings.HasPrefix(f, "4") }); !strings.HasPrefix(got, `0{"sid":`) {
				t.Fatalf("answer %q", got)
			}
			p.Send(`27["message:read",{"chatId":"` + chat1 + `","seq":1}]`)
			if got := p.Expect("ack", func(f string) bool { return strings.HasPrefix(f, "37[") }); got != `37[{"ok":true}]` {
				t.Fatalf("ack %q", got)
			}
			p.Send(`28["message:read","junk"]`)
			if got := p.Expect("ack", func(f string) bool { return strings.HasPrefix(f, "38[") }); !strings.Contains(got, `"code":"invalid_input"`) {
				t.Fatalf("ack %q", got)
			}
		})
	}
}

func TestLiveWebsocketEventsAndRooms(t *testing.T) {
	l := startLive(t, Config{})
	a := sioraw.Dial(t, l.url, "", nil)
	a.MustConnect("tok-a")
	b := sioraw.Dial(t, l.url, "", nil)
	b.MustConnect("tok-b")

	ack := a.CallOne(EventMessageSend, map[string]any{"chatId": chat1, "text": "hello"})
	if ack["ok"] != true || ack["message"].(map[string]any)["senderId"] != userA {
		t.Fatalf("send ack %v", ack)
	}
	if got := b.Event("message:new"); got[0] != "hello" {
		t.Fatalf("B got %v", got)
	}
	// The ack is the barrier: anything sent to A before it is queued.
	a.NoEvent("message:new", nil)
	// Malformed payloads over the wire: no payload, null, a number, and
	// extra arguments after a good one.
	for _, args := range [][]any{{}, {nil}, {7}, {"x", map[string]any{"chatId": chat1}}} {
		if code := errCode(t, a.CallOne(EventMessageRead, args...)); code != "invalid_input" {
			t.Fatalf("%v answered %q", args, code)
		}
	}
	if ack := a.CallOne(EventMessageRead, map[string]any{"chatId": chat1, "seq": 1}, "extra"); ack["ok"] != true {
		t.Fatalf("extra argument: %v", ack)
	}
	// Without an ack, and unknown events: nothing comes back, nothing breaks.
	a.Emit(`["typing",{"chatId":"` + chat1 + `","isTyping":true}]`)
	a.Emit(`["typing","garbage"]`)
	a.Emit(`["no:such:event",{}]`)
	if got := b.Event("typing"); got[0].(map[string]any)["isTyping"] != true {
		t.Fatalf("typing relayed as %v", got)
	}
	if ack := a.CallOne(EventChatHistory, map[string]any{"chatId": chat1}); ack["ok"] != true {
		t.Fatalf("history after junk: %v", ack)
	}
}

func TestLiveTokenSources(t *testing.T) {
	l := startLive(t, Config{})
	raw := map[string]struct {
		query  string
		header http.Header
		auth   map[string]any
	}{
		"auth":   {auth: map[string]any{"token": "tok-a"}},
		"query":  {query: "token=tok-a"},
		"bearer": {header: http.Header{"Authorization": {"Bearer tok-a"}}},
		"cookie": {header: http.Header{"Cookie": {"token=tok-a"}}},
		// The handshake's auth comes first.
		"auth over cookie": {auth: map[string]any{"token": "tok-a"}, header: http.Header{"Cookie": {"token=forged"}}},
	}
	for name, r := range raw {
		t.Run(name, func(t *testing.T) {
			c := sioraw.Dial(t, l.url, r.query, r.header)
			if kind, body := c.Connect(r.auth); kind != "40" {
				t.Fatalf("refused: %v", body)
			}
			if body := c.CallOne(EventMessageRead, map[string]any{"chatId": chat1, "seq": 1}); body["ok"] != true {
				t.Fatalf("read ack %v", body)
			}
		})
	}
}

func TestLiveRevocation(t *testing.T) {
	l := startLive(t, Config{})
	ended := sioraw.Dial(t, l.url, "", nil)
	ended.MustConnect("tok-a")
	other := sioraw.Dial(t, l.url, "", nil)
	other.MustConnect("tok-a2")
	start := time.Now()
	l.sessions.end(userA, sessA)
	// Exactly the payload: recovery is off, so no offset follows it.
	if f := ended.Next("session:revoked"); f != `42["session:revoked",{}]` {
		t.Fatalf("first frame %q", f)
	}
	if f := ended.Next("disconnect"); f != "41" {
		t.Fatalf("then %q, want a namespace DISCONNECT (the client's \"io server disconnect\")", f)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("revocation took %v", took)
	}
	// The user's other session is untouched.
	if body := other.CallOne(EventMessageRead, map[string]any{"chatId": chat1, "seq": 1}); body["ok"] != true {
		t.Fatalf("other session's ack %v", body)
	}
}

func TestLivePresence(t *testing.T) {
	l := startLive(t, Config{})
	b := sioraw.Dial(t, l.url, "", nil)
	b.MustConnect("tok-b")
	a := sioraw.Dial(t, l.url, "", nil)
	a.MustConnect("tok-a")
	p := b.Event(EventPresence)[0].(map[string]any)
	if p["userId"] != userA || p["online"] != true || p["lastSeenAt"] == nil {
		t.Fatalf("presence %v", p)
	}
	a2 := sioraw.Dial(t, l.url, "", nil)
	a2.MustConnect("tok-a2")
	a.Send("41")  // one of A's sockets leaves: A is still online
	a2.Send("41") // the last one leaves
	p = b.Event(EventPresence)[0].(map[string]any)
	if p["userId"] != userA || p["online"] != false || p["lastSeenAt"] == nil {
		t.Fatalf("presence %v", p)
	}
	// The offline event is the barrier: an extra one would be queued.
	b.NoEvent(EventPresence, nil)
}

// dropAll closes every socket's transport from the server side, without a
// disconnect packet: what a network failure looks like to the client.
func dropAll(t *testing.T, l *live) {
	t.Helper()
	nsp := l.srv.eng.nsp
	infos, err := nsp.Adapter().FetchSockets(context.Background(), sio.BroadcastOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range infos {
		if s := nsp.Socket(info.ID); s != nil {
			s.Drop()
		}
	}
}

// dropAndMiss connects tok-a, gets an event (the client learns its offset
// only from events), drops the transport, and sends chat:new while the
// client is away. It returns the sid, pid and offset to recover with.
func dropAndMiss(t *testing.T, l *live) (sid, pid, offset string) {
	t.Helper()
	c := sioraw.Dial(t, l.url, "", nil)
	body := c.MustConnect("tok-a")
	sid, pid = body["sid"].(string), body["pid"].(string)
	if pid == "" {
		t.Fatal("no pid: connection-state recovery is off")
	}
	l.srv.ToUsers([]string{userA}, "chat:update", map[string]any{"n": 1})
	args := c.Event("chat:update")
	offset = args[len(args)-1].(string)
	recv(t, l.users.seen, "lastSeenAt on connect")
	dropAll(t, l)
	c.WaitClosed("the drop")
	// The teardown's lastSeenAt: the server has let the socket go.
	recv(t, l.users.seen, "the server's teardown")
	l.srv.ToUsers([]string{userA}, "chat:new", map[string]any{"n": 2})
	return sid, pid, offset
}

// recoveryOn is a config with connection-state recovery turned on.
var recoveryOn = Config{RecoveryWindow: 2 * time.Minute}

func TestLiveConnectionStateRecovery(t *testing.T) {
	l := startLive(t, recoveryOn)
	sid, pid, offset := dropAndMiss(t, l)
	c := sioraw.Dial(t, l.url, "", nil)
	kind, body := c.Connect(map[string]any{"token": "tok-a", "pid": pid, "offset": offset})
	if kind != "40" || body["sid"] != sid || body["pid"] != pid {
		t.Fatalf("answer %s %v: want the old sid %s back (recovered)", kind, body, sid)
	}
	if got := c.Event("chat:new"); got[0].(map[string]any)["n"] != float64(2) {
		t.Fatalf("replayed %v", got)
	}
	// The recovered socket is back in its rooms and counted online.
	if ack := c.CallOne(EventMessageRead, map[string]any{"chatId": chat1, "seq": 1}); ack["ok"] != true {
		t.Fatalf("ack after recovery %v", ack)
	}
	if !l.srv.Online(userA) {
		t.Fatal("a recovered socket is not online")
	}
	l.srv.ToChat(chat1, "message:new", "after", "")
	if got := c.Event("message:new"); got[0] != "after" {
		t.Fatalf("chat room after recovery: %v", got)
	}
}

func TestLiveNoRecoveryAfterRevocation(t *testing.T) {
	l := startLive(t, recoveryOn)
	_, pid, offset := dropAndMiss(t, l)
	// The session ends while its socket is away.
	l.sessions.end(userA, sessA)
	l.accounts.forget("tok-a")
	c := sioraw.Dial(t, l.url, "", nil)
	kind, body := c.Connect(map[string]any{"token": "tok-a", "pid": pid, "offset": offset})
	if kind != "44" || body["message"] != "unauthorized" {
		t.Fatalf("answer %s %v, want 44 unauthorized", kind, body)
	}
	// Missed packets are replayed with the restore; the restore must have
	// refused, or the missed packet came ahead of the refusal.
	c.NoEvent("chat:new", nil)
}

func TestLiveRoomLookupFailureDropsTransport(t *testing.T) {
	l := startLive(t, Config{})
	l.chats.mu.Lock()
	l.chats.chatErr = errors.New("database down")
	l.chats.mu.Unlock()
	c := sioraw.Dial(t, l.url, "", nil)
	b, _ := json.Marshal(map[string]any{"token": "tok-a"})
	c.Send("40" + string(b))
	// No CONNECT answer: a closed transport, which clients retry.
	c.WaitClosed("the connection to close")
	for _, f := range c.Frames() {
		if strings.HasPrefix(f, "40") || strings.HasPrefix(f, "44") {
			t.Fatalf("answered %q, want the connection closed", f)
		}
	}
}

func TestLiveEngineIO3(t *testing.T) {
	l := startLive(t, Config{})
	hc := &http.Client{Timeout: waitFor}
	do := func(method, query, body string) string {
		t.Helper()
		req, _ := http.NewRequest(method, l.url+"/socket.io/?"+query, strings.NewReader(body))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %d %s", method, query, resp.StatusCode, b)
		}
		return string(b)
	}
	// Engine.IO 3 polling frames are <length>:<packet>.
	frame := func(pkt string) string { return strconv.Itoa(len(pkt)) + ":" + pkt }
	handshake := func(token string) (sid, body string) {
		t.Helper()
		body = do(http.MethodGet, "EIO=3&transport=polling&token="+token, "")
		open := body[strings.Index(body, "0{")+1:]
		var hs struct {
			Sid string `json:"sid"`
		}
		if err := json.NewDecoder(strings.NewReader(open)).Decode(&hs); err != nil || hs.Sid == "" {
			t.Fatalf("no Engine.IO 3 open packet in %q", body)
		}
		return hs.Sid, body
	}
	// until polls until want shows up: the namespace packet may come in
	// the handshake response or in a later poll.
	until := func(sid, body, want string) {
		t.Helper()
		for range 5 {
			if strings.Contains(body, want) {
				return
			}
			body = do(http.MethodGet, "EIO=3&transport=polling&sid="+url.QueryEscape(sid), "")
		}
		t.Fatalf("%q never came; last poll %q", want, body)
	}
	sid, body := handshake("forged")
	until(sid, body, frame(`44"unauthorized"`))

	sid, body = handshake("tok-a")
	until(sid, body, frame("40"))
	do(http.MethodPost, "EIO=3&transport=polling&sid="+url.QueryEscape(sid), frame(`421["message:read",{"chatId":"`+chat1+`","seq":1}]`))
	until(sid, "", frame(`431[{"ok":true}]`))
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
	// A websocket from another origin is refused at the upgrade.
	u := "ws" + strings.TrimPrefix(strict.url, "http") + "/socket.io/?EIO=4&transport=websocket"
	if ws, _, err := websocket.DefaultDialer.Dial(u, http.Header{"Origin": {"https://evil.example"}}); err == nil {
		ws.Close()
		t.Fatal("cross-origin websocket accepted")
	}
	// From the configured origin it works.
	c := sioraw.Dial(t, strict.url, "", http.Header{"Origin": {"https://app.example"}})
	c.MustConnect("tok-a")
}

func TestCloseRefusesNewHandshakes(t *testing.T) {
	l := startLive(t, Config{})
	c := sioraw.Dial(t, l.url, "", nil)
	c.MustConnect("tok-a")
	l.srv.Close()
	c.WaitClosed("the connection to close at shutdown")
	resp, err := http.Get(l.url + "/socket.io/?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("handshake after Close: %d", resp.StatusCode)
	}
}

func TestRecoveryRefusedForAnEndedSession(t *testing.T) {
	h := newHarness(t)
	live := auth.Identity{UserID: userA, SessionID: sessA}
	if !h.s.mayRecover(live, live) {
		t.Fatal("a live session may not recover")
	}
	// Another session's or user's credentials never take over its state.
	if h.s.mayRecover(live, auth.Identity{UserID: userA, SessionID: sessA2}) || h.s.mayRecover(live, auth.Identity{UserID: userB, SessionID: sessB}) {
		t.Fatal("a socket recovered another session's state")
	}
	h.s.revoke(userA, []string{sessA})
	if h.s.mayRecover(live, live) {
		t.Fatal("an ended session may recover, missed packets and all")
	}
	if h.s.mayRecover("not ours", live) || h.s.mayRecover(nil, live) {
		t.Fatal("a session without an identity may recover")
	}
}

func TestRecoveryOffByDefault(t *testing.T) {
	l := startLive(t, Config{})
	c := sioraw.Dial(t, l.url, "", nil)
	if body := c.MustConnect("tok-a"); body["pid"] != nil {
		t.Fatalf("CONNECT answer %v: a pid means recovery is on", body)
	}
	l.srv.ToUsers([]string{userA}, "chat:update", map[string]any{"n": 1})
	if got := c.Event("chat:update"); len(got) != 1 {
		t.Fatalf("chat:update carried %v: exactly the payload, no offset", got)
	}
}
