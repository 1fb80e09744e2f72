package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/auth"
	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/files"
	"github.com/parley-chat/parley/internal/apperr"
	"github.com/parley-chat/parley/internal/clientaddr"
	"github.com/parley-chat/parley/internal/wire"
	"github.com/parley-chat/parley/store"
)

// The handlers against fakes: what HTTP makes of each service answer. The
// services themselves are tested in their packages, the whole process in
// the root package.

const goodToken = "good-token"

var (
	me      = auth.Identity{UserID: store.NewID(), SessionID: store.NewID()}
	errDown = errors.New("database on fire: password=hunter2")
)

type fakeAccounts struct {
	ended  []string
	logout error
	// client is the address the last login was charged to.
	client string
}

func (f *fakeAccounts) Signup(context.Context, auth.SignupInput) (*auth.Grant, error) {
	return nil, apperr.Invalid("invalid signup", map[string]string{"username": "taken"})
}

func (f *fakeAccounts) Login(_ context.Context, login, _, client, _ string) (*auth.Grant, error) {
	f.client = client
	if login != "alice" {
		return nil, auth.ErrBadLogin
	}
	return &auth.Grant{Token: goodToken, ExpiresAt: time.Now().Add(time.Hour), User: &store.User{ID: me.UserID, Username: "alice"}, SessionID: me.SessionID}, nil
}

func (f *fakeAccounts) Authenticate(_ context.Context, token string) (auth.Identity, error) {
	if token != goodToken {
		return auth.Identity{}, auth.ErrUnauthenticated
	}
	return me, nil
}

func (f *fakeAccounts) UpdateProfile(context.Context, auth.Identity, auth.ProfileInput) (*store.User, error) {
	return nil, errDown
}

func (f *fakeAccounts) Logout(context.Context, auth.Identity) error { return f.logout }

func (f *fakeAccounts) LogoutAll(context.Context, auth.Identity) error { return nil }

func (f *fakeAccounts) Sessions(context.Context, auth.Identity) ([]store.Session, error) {
	return []store.Session{{ID: me.SessionID}, {ID: store.NewID()}}, nil
}

func (f *fakeAccounts) EndSession(_ context.Context, _ auth.Identity, sid string) error {
	if !store.ValidID(sid) {
		return apperr.New(apperr.NotFound, "no such session")
	}
	f.ended = append(f.ended, sid)
	return nil
}

type fakeChats struct{ ChatService }

func (fakeChats) CreateDirect(_ context.Context, _, otherID string) (chat.View, bool, error) {
	return chat.View{Chat: &store.Chat{ID: "c-" + otherID, Type: store.ChatDirect}}, otherID == "new", nil
}

func (fakeChats) Send(_ context.Context, userID, _ string, in chat.SendInput) (chat.Sent, error) {
	m := &store.Message{ID: "m1", ChatID: in.ChatID, SenderID: userID, Text: *in.Text, Seq: 7}
	return chat.Sent{Message: m, Rendered: wire.NewMessage(m), Created: in.ClientMsgID == nil}, nil
}

type fakeFiles struct{ Files }

func (fakeFiles) Limits() files.Limits { return files.Limits{Upload: 10, Avatar: 10} }

func (fakeFiles) Readable(context.Context, string, string) (*store.File, error) {
	return nil, apperr.New(apperr.NotFound, "no such file")
}

func newTestRouter(a *fakeAccounts, secure bool) http.Handler {
	return NewRouter(Deps{Accounts: a, Chats: fakeChats{}, Files: fakeFiles{}, SecureCookies: secure})
}

func TestHandlers(t *testing.T) {
	cases := []struct {
		name, method, path, token, body string
		header                          map[string]string
		status                          int
		code                            apperr.Code // "" for a success
		check                           func(t *testing.T, rec *httptest.ResponseRecorder)
	}{
		{name: "no token", method: "GET", path: "/api/chats", status: 401, code: apperr.Unauthorized},
		{name: "unknown route", method: "GET", path: "/api/nope", status: 404, code: apperr.NotFound},
		{name: "wrong method", method: "PUT", path: "/api/auth/login", status: 405, code: apperr.InvalidInput},
		{name: "not JSON", method: "POST", path: "/api/auth/login", body: "login=x", header: map[string]string{"Content-Type": "text/plain"}, status: 415, code: apperr.UnsupportedMediaType},
		{name: "bad login", method: "POST", path: "/api/auth/login", body: `{"login":"bob","password":"x"}`, status: 401, code: apperr.Unauthorized},
		{name: "signup refused names the field", method: "POST", path: "/api/auth/signup", body: `{"username":"a"}`, status: 400, code: apperr.InvalidInput,
			check: func(t *testing.T, rec *httptest.ResponseRecorder) {
				if !strings.Contains(rec.Body.String(), `"username":"taken"`) {
					t.Errorf("fields missing: %s", rec.Body)
				}
			}},
		{name: "internal error hides its cause", method: "PATCH", path: "/api/me", token: goodToken, body: `{"displayName":"x"}`, status: 500, code: apperr.Internal,
			check: func(t *testing.T, rec *httptest.ResponseRecorder) {
				if strings.Contains(rec.Body.String(), "hunter2") {
					t.Errorf("cause leaked: %s", rec.Body)
				}
			}},
		{name: "chat type checked", method: "POST", path: "/api/chats", token: goodToken, body: `{"type":"circle"}`, status: 400, code: apperr.InvalidInput},
		{name: "direct chat found", method: "POST", path: "/api/chats", token: goodToken, body: `{"type":"direct","userId":"old"}`, status: 200},
		{name: "direct chat created", method: "POST", path: "/api/chats", token: goodToken, body: `{"type":"direct","userId":"new"}`, status: 201},
		{name: "message created", method: "POST", path: "/api/chats/c1/messages", token: goodToken, body: `{"text":"hi"}`, status: 201,
			check: func(t *testing.T, rec *httptest.ResponseRecorder) {
				var m wire.Message
				if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || m.ID != "m1" || m.ChatID != "c1" || m.Seq != 7 {
					t.Errorf("message body: %s (%v)", rec.Body, err)
				}
			}},
		{name: "message replayed", method: "POST", path: "/api/chats/c1/messages", token: goodToken, body: `{"text":"hi","clientMsgId":"k"}`, status: 200},
		{name: "unreadable file", method: "GET", path: "/api/files/" + store.NewID(), token: goodToken, status: 404, code: apperr.NotFound},
		{name: "upload over the limit refused unread", method: "POST", path: "/api/files", token: goodToken,
			body:   strings.Repeat("x", 70<<10),
			header: map[string]string{"Content-Type": "multipart/form-data; boundary=b"}, status: 413, code: apperr.TooLarge,
			check: func(t *testing.T, rec *httptest.ResponseRecorder) {
				if rec.Header().Get("Connection") != "close" {
					t.Errorf("Connection = %q, want close", rec.Header().Get("Connection"))
				}
			}},
		{name: "sessions mark the current one", method: "GET", path: "/api/auth/sessions", token: goodToken, status: 200,
			check: func(t *testing.T, rec *httptest.ResponseRecorder) {
				var body struct{ Sessions []wire.Session }
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || len(body.Sessions) != 2 || !body.Sessions[0].Current || body.Sessions[1].Current {
					t.Errorf("sessions: %s (%v)", rec.Body, err)
				}
			}},
		{name: "ending a malformed session", method: "DELETE", path: "/api/auth/sessions/nope", token: goodToken, status: 404, code: apperr.NotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req := httptest.NewRequest(tc.method, tc.path, body)
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			rec := httptest.NewRecorder()
			newTestRouter(&fakeAccounts{}, false).ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if tc.code != "" {
				var e apperr.Body
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code != tc.code {
					t.Fatalf("error body %s, want code %s (%v)", rec.Body, tc.code, err)
				}
			}
			if tc.check != nil {
				tc.check(t, rec)
			}
		})
	}
}

func TestTokenCookie(t *testing.T) {
	cases := []struct {
		name       string
		secure     bool
		wantSecure bool
	}{
		{"plain HTTP in development", false, false},
		{"behind a TLS proxy (COOKIE_SECURE)", true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestRouter(&fakeAccounts{}, tc.secure)
			req := httptest.NewRequest("POST", "/api/auth/login", strings.NewReader(`{"login":"alice","password":"pw"}`))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			cookies := rec.Result().Cookies()
			if rec.Code != 200 || len(cookies) != 1 || cookies[0].Name != auth.CookieName || cookies[0].Value != goodToken {
				t.Fatalf("login: %d %v", rec.Code, cookies)
			}
			if cookies[0].Secure != tc.wantSecure || !cookies[0].HttpOnly {
				t.Errorf("cookie Secure=%v HttpOnly=%v, want Secure=%v HttpOnly", cookies[0].Secure, cookies[0].HttpOnly, tc.wantSecure)
			}

			// The cookie alone authenticates, and logout clears it.
			req = httptest.NewRequest("POST", "/api/auth/logout", nil)
			req.AddCookie(&http.Cookie{Name: auth.CookieName, Value: goodToken})
			rec = httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			cookies = rec.Result().Cookies()
			if rec.Code != 204 || len(cookies) != 1 || cookies[0].MaxAge >= 0 || cookies[0].Secure != tc.wantSecure {
				t.Fatalf("logout: %d %v", rec.Code, cookies)
			}
		})
	}
}

func TestEndOwnSessionClearsCookie(t *testing.T) {
	a := &fakeAccounts{}
	h := newTestRouter(a, false)
	for _, sid := range []string{store.NewID(), me.SessionID} {
		req := httptest.NewRequest("DELETE", "/api/auth/sessions/"+sid, nil)
		req.Header.Set("Authorization", "Bearer "+goodToken)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		cleared := len(rec.Result().Cookies()) == 1
		if rec.Code != 204 || cleared != (sid == me.SessionID) {
			t.Errorf("end %s: status %d, cookie cleared %v", sid, rec.Code, cleared)
		}
	}
	if len(a.ended) != 2 {
		t.Errorf("ended %v", a.ended)
	}
}

// The login throttle counts failures per client address: the same address
// the flood limits use, so behind a trusted proxy each client has its own
// count instead of all of them sharing the proxy's.
func TestLoginChargesClientAddress(t *testing.T) {
	cases := []struct {
		name    string
		trusted []string
		peer    string
		xff     string
		want    string
	}{
		{"no proxies: the peer", nil, "192.0.2.7:4000", "", "192.0.2.7"},
		{"no proxies: a forwarded header is ignored", nil, "192.0.2.7:4000", "198.51.100.1", "192.0.2.7"},
		{"trusted proxy: the forwarded client", []string{"10.0.0.0/8"}, "10.0.0.2:4000", "198.51.100.1", "198.51.100.1"},
		{"trusted proxy: a spoofed left hop changes nothing", []string{"10.0.0.0/8"}, "10.0.0.2:4000", "203.0.113.9, 198.51.100.1", "198.51.100.1"},
		{"untrusted peer: its header is ignored", []string{"10.0.0.0/8"}, "192.0.2.7:4000", "198.51.100.1", "192.0.2.7"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addrs, err := clientaddr.New(tc.trusted)
			if err != nil {
				t.Fatal(err)
			}
			a := &fakeAccounts{}
			h := NewRouter(Deps{Accounts: a, Limits: Limits{Addrs: addrs}})
			req := httptest.NewRequest("POST", "/api/auth/login", strings.NewReader(`{"login":"mallory","password":"guess"}`))
			req.Header.Set("Content-Type", "application/json")
			req.RemoteAddr = tc.peer
			if tc.xff != "" {
				req.Header.Set("X-Forwarded-For", tc.xff)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("login answered %d %s", rec.Code, rec.Body)
			}
			if a.client != tc.want {
				t.Fatalf("failure charged to %q, want %q", a.client, tc.want)
			}
		})
	}
}
