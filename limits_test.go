package main

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/testenv"
	"github.com/parley-chat/parley/internal/testenv/sioraw"
)

// limitedServer runs a server whose flood limits are those in env (the
// rest off), on a private Redis so no other test's traffic from
// 127.0.0.1 counts against it.
func limitedServer(t *testing.T, env ...string) *testServer {
	t.Helper()
	cfg, err := loadConfig(t.TempDir(), append(append([]string{
		"HOST=127.0.0.1", "PORT=0", "DATA_DIR=" + t.TempDir(), "BCRYPT_COST=4",
		"JWT_SECRET=" + testJWTSecret, "LOG_LEVEL=warn", "PARLEY_ENV=test",
		"REDIS_URL=" + testenv.StartRedis(t).URL,
	}, noFloodLimits...), env...))
	if err != nil {
		t.Fatal(err)
	}
	return startServer(t, cfg)
}

// wantLimitedAck checks a socket ack is the contract's rate_limited.
func wantLimitedAck(t *testing.T, what string, ack map[string]any) {
	t.Helper()
	wantAckError(t, what, ack, "rate_limited")
	if ms, _ := ack["error"].(map[string]any)["retryAfterMs"].(float64); ms <= 0 {
		t.Fatalf("%s: no retryAfterMs in %v", what, ack)
	}
}

// wantLimitedREST checks a 429 in the contract's shape with Retry-After.
func wantLimitedREST(t *testing.T, what string, r response) {
	t.Helper()
	wantRESTError(t, what, r, 429, "rate_limited")
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("%s: Retry-After %q", what, r.Header.Get("Retry-After"))
	}
	if msg, _ := r.Body["error"].(map[string]any)["message"].(string); msg == "" {
		t.Fatalf("%s: no message: %s", what, r.Raw)
	}
}

// connectRefused tries a socket as token and returns the connect_error.
func connectRefused(t *testing.T, srv *testServer, token string) string {
	t.Helper()
	c := sioraw.Dial(t, srv.URL, "", nil)
	defer c.Close()
	kind, body := c.Connect(map[string]any{"token": token})
	if kind != "44" {
		t.Fatalf("connect was accepted, want refused")
	}
	msg, _ := body["message"].(string)
	return msg
}

func TestSendLimitPerUser(t *testing.T) {
	srv := limitedServer(t, "LIMIT_MESSAGE_SEND=3/m:3")
	a, b := signup(t, srv, "sendlim"), signup(t, srv, "sendpeer")
	chatID := newDirectChat(t, srv, a, b)
	s1, s2 := connectSock(t, srv, a.Token), connectSock(t, srv, a.Token)
	for i := range 3 {
		sendSock(t, []*sioraw.Client{s1, s2}[i%2], chatID, "ok "+strconv.Itoa(i))
	}
	// The budget is the user's, whichever socket sends.
	for _, s := range []*sioraw.Client{s1, s2} {
		wantLimitedAck(t, "send over the limit", s.CallOne("message:send", map[string]any{"chatId": chatID, "text": "too many"}))
	}
	// The connection stays up and answers other events; nothing was stored.
	h := s1.CallOne("chat:history", map[string]any{"chatId": chatID})
	if h["ok"] != true || len(h["messages"].([]any)) != 3 {
		t.Fatalf("history after refused sends: %v", h)
	}
	// Others are not slowed: b still sends.
	sendSock(t, connectSock(t, srv, b.Token), chatID, "from b")
}

func TestTypingLimitPerSocket(t *testing.T) {
	srv := limitedServer(t, "LIMIT_TYPING=2/m:2")
	a, b := signup(t, srv, "typelim"), signup(t, srv, "typepeer")
	chatID := newDirectChat(t, srv, a, b)
	s := connectSock(t, srv, a.Token)
	for i, typing := range []bool{true, false} {
		if ack := s.CallOne("typing", map[string]any{"chatId": chatID, "isTyping": typing}); ack["ok"] != true {
			t.Fatalf("typing change %d: %v", i, ack)
		}
	}
	wantLimitedAck(t, "third change", s.CallOne("typing", map[string]any{"chatId": chatID, "isTyping": true}))
	// Per socket: a second socket of the same user has its own budget.
	if ack := connectSock(t, srv, a.Token).CallOne("typing", map[string]any{"chatId": chatID, "isTyping": true}); ack["ok"] != true {
		t.Fatalf("another socket's typing: %v", ack)
	}
}

func TestSocketLimits(t *testing.T) {
	t.Run("sockets per user", func(t *testing.T) {
		srv := limitedServer(t, "MAX_SOCKETS_PER_USER=2")
		a, b := signup(t, srv, "socklim"), signup(t, srv, "sockother")
		first, second := connectSock(t, srv, a.Token), connectSock(t, srv, a.Token)
		if msg := connectRefused(t, srv, a.Token); msg != "rate_limited" {
			t.Fatalf("third socket: connect_error %q, want rate_limited", msg)
		}
		connectSock(t, srv, b.Token) // another user is not affected
		// A closed socket frees its slot (released when the server sees the close).
		first.Close()
		waitConnects(t, srv, a.Token)
		// So does a socket that only leaves the namespace ("41"), its
		// transport still open.
		second.Send("41")
		waitConnects(t, srv, a.Token)
	})
	t.Run("open sockets per address", func(t *testing.T) {
		srv := limitedServer(t, "MAX_SOCKETS_PER_ADDRESS=2")
		a, b, c := signup(t, srv, "addr1"), signup(t, srv, "addr2"), signup(t, srv, "addr3")
		connectSock(t, srv, a.Token)
		second := connectSock(t, srv, b.Token)
		if msg := connectRefused(t, srv, c.Token); msg != "rate_limited" {
			t.Fatalf("third socket from one address: %q, want rate_limited", msg)
		}
		second.Close()
		waitConnects(t, srv, c.Token)
	})
	t.Run("handshakes per address", func(t *testing.T) {
		srv := limitedServer(t, "LIMIT_HANDSHAKES=3/m:3")
		a := signup(t, srv, "hslim")
		for range 3 {
			connectSock(t, srv, a.Token).Close()
		}
		if msg := connectRefused(t, srv, a.Token); msg != "rate_limited" {
			t.Fatalf("fourth handshake: %q, want rate_limited", msg)
		}
		// Refused before the credential check: a bad token is refused
		// the same way, costing no database work.
		if msg := connectRefused(t, srv, "not-a-token"); msg != "rate_limited" {
			t.Fatalf("bad token over the limit: %q, want rate_limited", msg)
		}
		// REST is not slowed.
		if r := call(t, "GET", srv.URL+"/api/me", a.Token, nil); r.Status != 200 {
			t.Fatalf("REST after the handshake limit: %d", r.Status)
		}
	})
}

// waitConnects retries a connect until a freed slot lets it in: the slot
// is given back when the server handles the close, after the client's.
func waitConnects(t *testing.T, srv *testServer, token string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		c := sioraw.Dial(t, srv.URL, "", nil)
		if kind, _ := c.Connect(map[string]any{"token": token}); kind == "40" {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the slot of a closed socket was never given back")
		}
		time.Sleep(20 * time.Millisecond) // retry interval, not synchronisation
	}
}

func TestRESTLimitPerAddress(t *testing.T) {
	srv := limitedServer(t, "LIMIT_REST=5/m:5")
	a := signup(t, srv, "restlim") // 1
	for i := range 4 {
		if r := call(t, "GET", srv.URL+"/api/me", a.Token, nil); r.Status != 200 {
			t.Fatalf("request %d: %d", i+2, r.Status)
		}
	}
	wantLimitedREST(t, "6th request", call(t, "GET", srv.URL+"/api/me", a.Token, nil))
	wantLimitedREST(t, "6th request, no credentials", call(t, "POST", srv.URL+"/api/auth/login", "", map[string]any{"login": "x", "password": "y"}))
	// Health and metrics are not API requests.
	if r := call(t, "GET", srv.URL+"/healthz", "", nil); r.Status != 200 {
		t.Fatalf("healthz: %d", r.Status)
	}
}

func TestSignupLimitPerAddress(t *testing.T) {
	srv := limitedServer(t, "LIMIT_SIGNUPS=2/h:2")
	signup(t, srv, "su1")
	signup(t, srv, "su2")
	r := call(t, "POST", srv.URL+"/api/auth/signup", "", map[string]any{"username": "su3_" + randomHex(3), "email": randomHex(4) + "@example.com", "password": "correct horse battery"})
	wantLimitedREST(t, "third signup", r)
}

// TestTrustedProxies: X-Forwarded-For decides the client address only when
// the peer is a trusted proxy, and then its right-most untrusted hop.
func TestTrustedProxies(t *testing.T) {
	get := func(srv *testServer, xff string) response {
		req, _ := http.NewRequest("GET", srv.URL+"/api/users/"+randomHex(12), nil)
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		return do(t, req)
	}
	t.Run("trusted", func(t *testing.T) {
		srv := limitedServer(t, "LIMIT_REST=2/m:2", "TRUSTED_PROXIES=127.0.0.0/8,::1")
		for range 2 {
			if r := get(srv, "6.6.6.6, 198.51.100.1"); r.Status == 429 {
				t.Fatal("limited before the budget")
			}
		}
		wantLimitedREST(t, "third from 198.51.100.1", get(srv, "198.51.100.1"))
		// A client cannot escape by writing another address to the left.
		wantLimitedREST(t, "spoofed left hop", get(srv, "203.0.113.5, 198.51.100.1"))
		// Another client behind the proxy has its own budget.
		if r := get(srv, "198.51.100.2"); r.Status == 429 {
			t.Fatal("another client behind the proxy was limited")
		}
	})
	t.Run("untrusted", func(t *testing.T) {
		srv := limitedServer(t, "LIMIT_REST=2/m:2")
		get(srv, "198.51.100.1")
		get(srv, "198.51.100.2")
		wantLimitedREST(t, "X-Forwarded-For from an untrusted peer is ignored", get(srv, "198.51.100.3"))
	})
}

// A socket that comes without credentials, to wait for the MERN app's
// setup, is a handshake like any other for its address's limits, and its
// setup takes one of the user's open-socket slots.
func TestSocketLimitsWithoutCredentials(t *testing.T) {
	waiting := func(t *testing.T, srv *testServer) (*sioraw.Client, string) {
		t.Helper()
		c := sioraw.Dial(t, srv.URL, "", nil)
		c.Send("40")
		f := c.Expect("CONNECT answer", func(f string) bool { return strings.HasPrefix(f, "4") })
		return c, f
	}
	t.Run("open sockets per address", func(t *testing.T) {
		srv := limitedServer(t, "MAX_SOCKETS_PER_ADDRESS=2")
		a := signup(t, srv, "waitaddr")
		first, f1 := waiting(t, srv)
		_, f2 := waiting(t, srv)
		if !strings.HasPrefix(f1, "40") || !strings.HasPrefix(f2, "40") {
			t.Fatalf("two waiting sockets: %s, %s", f1, f2)
		}
		if _, f := waiting(t, srv); !strings.HasPrefix(f, "44") || !strings.Contains(f, "rate_limited") {
			t.Fatalf("third waiting socket from one address: %s, want connect_error rate_limited", f)
		}
		if msg := connectRefused(t, srv, a.Token); msg != "rate_limited" {
			t.Fatalf("a socket with credentials after two waiting: %q, want rate_limited", msg)
		}
		first.Close()
		waitConnects(t, srv, a.Token)
	})
	t.Run("handshakes per address", func(t *testing.T) {
		srv := limitedServer(t, "LIMIT_HANDSHAKES=2/m:2")
		for range 2 {
			c, f := waiting(t, srv)
			if !strings.HasPrefix(f, "40") {
				t.Fatalf("waiting socket within the rate: %s", f)
			}
			c.Close()
		}
		if _, f := waiting(t, srv); !strings.HasPrefix(f, "44") || !strings.Contains(f, "rate_limited") {
			t.Fatalf("third handshake in a minute: %s, want connect_error rate_limited", f)
		}
	})
	t.Run("sockets per user at setup", func(t *testing.T) {
		srv := limitedServer(t, "MAX_SOCKETS_PER_USER=1")
		a := signup(t, srv, "waituser")
		native := connectSock(t, srv, a.Token)
		over, _ := waiting(t, srv)
		over.Emit(`["setup",{"_id":"` + a.ID + `","token":"` + a.Token + `"}]`)
		waitServerDisconnect(t, over, "setup over the user's socket limit")
		over.NoEvent("connected", nil)

		native.Close()
		// Once the native socket's slot is back, a setup binds; the bound
		// socket then holds the user's slot.
		for deadline := time.Now().Add(5 * time.Second); ; {
			c, _ := waiting(t, srv)
			c.Emit(`["setup",{"_id":"` + a.ID + `","token":"` + a.Token + `"}]`)
			if f := c.Expect("setup answer", func(f string) bool {
				return f == "41" || strings.HasPrefix(f, `42["connected"`)
			}); f != "41" {
				break
			}
			c.Close()
			if time.Now().After(deadline) {
				t.Fatal("the closed socket's slot was never given back")
			}
			time.Sleep(20 * time.Millisecond) // retry interval, not synchronisation
		}
		if msg := connectRefused(t, srv, a.Token); msg != "rate_limited" {
			t.Fatalf("a second socket beside the bound one: %q, want rate_limited", msg)
		}
	})
}

// The contract's per-request limits are defaults an operator can change.
func TestRequestLimitsConfigurable(t *testing.T) {
	srv := limitedServer(t, "MESSAGE_MAX_CHARS=5", "HISTORY_MAX_PAGE=2", "HISTORY_DEFAULT_PAGE=2", "CLIENT_MSG_ID_MAX_CHARS=3")
	a, b := signup(t, srv, "cfglim"), signup(t, srv, "cfglim2")
	chatID := directChat(t, srv, a, b)
	send := func(body map[string]any) response {
		return call(t, "POST", srv.URL+"/api/chats/"+chatID+"/messages", a.Token, body)
	}
	for _, text := range []string{"héllo", "one", "two"} { // 5 code points is within
		if r := send(map[string]any{"text": text}); r.Status != 201 {
			t.Fatalf("send %q: %d %s", text, r.Status, r.Raw)
		}
	}
	wantRESTError(t, "6 characters", send(map[string]any{"text": "héllo!"}), 400, "invalid_input")
	wantRESTError(t, "a 4-character clientMsgId", send(map[string]any{"text": "x", "clientMsgId": "abcd"}), 400, "invalid_input")
	page := call(t, "GET", srv.URL+"/api/chats/"+chatID+"/messages?limit=50", a.Token, nil)
	if msgs, _ := page.Body["messages"].([]any); page.Status != 200 || len(msgs) != 2 || page.Body["hasMore"] != true {
		t.Fatalf("a page asked for 50 with HISTORY_MAX_PAGE=2: %d %s", page.Status, page.Raw)
	}
}
