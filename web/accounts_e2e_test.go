package web_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/parley-chat/parley/internal/testenv"
	"github.com/parley-chat/parley/internal/testenv/stack"
)

func TestSignupValidation(t *testing.T) {
	stack.ForEachStore(t, func(t *testing.T, srv *stack.Server) {
		taken := stack.Signup(t, srv.URL, "taken")
		cases := []struct {
			name  string
			body  any
			code  string
			field string
		}{
			{"short username", map[string]any{"username": "ab", "email": "ab@example.com", "password": "password1"}, "invalid_input", "username"},
			{"long username", map[string]any{"username": strings.Repeat("a", 33), "email": "a33@example.com", "password": "password1"}, "invalid_input", "username"},
			{"username with space", map[string]any{"username": "bad name", "email": "bn@example.com", "password": "password1"}, "invalid_input", "username"},
			{"missing username", map[string]any{"email": "mu@example.com", "password": "password1"}, "invalid_input", "username"},
			{"bad email", map[string]any{"username": "goodname1", "email": "not-an-email", "password": "password1"}, "invalid_input", "email"},
			{"missing email", map[string]any{"username": "goodname2", "password": "password1"}, "invalid_input", "email"},
			{"short password", map[string]any{"username": "goodname3", "email": "g3@example.com", "password": "1234567"}, "invalid_input", "password"},
			{"73-byte password", map[string]any{"username": "goodname4", "email": "g4@example.com", "password": strings.Repeat("p", 73)}, "invalid_input", "password"},
			{"username of wrong type", map[string]any{"username": 42, "email": "g5@example.com", "password": "password1"}, "invalid_input", "username"},
			{"empty display name", map[string]any{"username": "goodname6", "email": "g6@example.com", "password": "password1", "displayName": "  "}, "invalid_input", "displayName"},
			{"username taken in other case", map[string]any{"username": strings.ToUpper(taken.Username), "email": "other@example.com", "password": "password1"}, "conflict", "username"},
			{"email taken in other case", map[string]any{"username": "goodname7", "email": strings.ToUpper(taken.Email), "password": "password1"}, "conflict", "email"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := stack.Call(t, "POST", srv.URL+"/api/auth/signup", "", c.body)
				want := map[string]int{"invalid_input": 400, "conflict": 409}[c.code]
				if r.Status != want || r.ErrorCode() != c.code {
					t.Fatalf("got %d %s, want %d %s", r.Status, r.Raw, want, c.code)
				}
				fields, _ := r.Body["error"].(map[string]any)["fields"].(map[string]any)
				if _, ok := fields[c.field]; !ok {
					t.Fatalf("error does not name field %q: %s", c.field, r.Raw)
				}
			})
		}
		t.Run("72-byte password is accepted", func(t *testing.T) {
			r := stack.Call(t, "POST", srv.URL+"/api/auth/signup", "", map[string]any{"username": "max72_" + stack.RandomHex(3), "email": stack.RandomHex(4) + "@example.com", "password": strings.Repeat("p", 72)})
			if r.Status != 201 {
				t.Fatalf("got %d %s", r.Status, r.Raw)
			}
		})
		t.Run("user object has every field and no secrets", func(t *testing.T) {
			r := stack.Call(t, "POST", srv.URL+"/api/auth/signup", "", map[string]any{"username": "Mixed_" + stack.RandomHex(3), "email": "Mixed" + stack.RandomHex(3) + "@Example.com", "password": "password1"})
			if r.Status != 201 {
				t.Fatalf("got %d %s", r.Status, r.Raw)
			}
			u := r.Body["user"].(map[string]any)
			for _, k := range []string{"id", "username", "displayName", "avatarUrl", "online", "lastSeenAt", "createdAt", "email"} {
				if _, ok := u[k]; !ok {
					t.Errorf("user lacks %q: %s", k, r.Raw)
				}
			}
			if u["username"] != strings.ToLower(u["username"].(string)) || u["email"] != strings.ToLower(u["email"].(string)) {
				t.Errorf("username and email are not stored lower-cased: %s", r.Raw)
			}
			if strings.Contains(string(r.Raw), "$2a$") || strings.Contains(string(r.Raw), "password") {
				t.Errorf("response carries a password or hash: %s", r.Raw)
			}
			if r.Body["expiresAt"] == nil || r.Body["token"] == nil {
				t.Errorf("no token or expiresAt: %s", r.Raw)
			}
			var cookie *http.Cookie
			for _, c := range (&http.Response{Header: r.Header}).Cookies() {
				if c.Name == "token" {
					cookie = c
				}
			}
			if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Value != r.Body["token"] {
				t.Errorf("token cookie missing or not HttpOnly SameSite=Lax: %v", r.Header["Set-Cookie"])
			}
		})
	})
}

func TestLogin(t *testing.T) {
	stack.ForEachStore(t, func(t *testing.T, srv *stack.Server) {
		a := stack.Signup(t, srv.URL, "login")
		for _, login := range []string{a.Email, a.Username, strings.ToUpper(a.Username), strings.ToUpper(a.Email)} {
			r := stack.Call(t, "POST", srv.URL+"/api/auth/login", "", map[string]any{"login": login, "password": a.Password})
			if r.Status != 200 || r.Body["user"].(map[string]any)["id"] != a.ID {
				t.Fatalf("login as %q: %d %s", login, r.Status, r.Raw)
			}
			if me := stack.Call(t, "GET", srv.URL+"/api/me", r.Body["token"].(string), nil); me.Status != 200 || me.Body["email"] != a.Email {
				t.Fatalf("token from login does not work: %d %s", me.Status, me.Raw)
			}
		}
		wrong := stack.Call(t, "POST", srv.URL+"/api/auth/login", "", map[string]any{"login": a.Username, "password": "wrong password"})
		unknown := stack.Call(t, "POST", srv.URL+"/api/auth/login", "", map[string]any{"login": "nobody_" + stack.RandomHex(4), "password": "wrong password"})
		if wrong.Status != 401 || unknown.Status != 401 || string(wrong.Raw) != string(unknown.Raw) {
			t.Fatalf("unknown user and wrong password differ:\n%d %s\n%d %s", wrong.Status, wrong.Raw, unknown.Status, unknown.Raw)
		}
	})
}

func TestLoginThrottle(t *testing.T) {
	for _, kind := range stack.Kinds {
		t.Run(kind, func(t *testing.T) { testLoginThrottle(t, kind) })
	}
}

func testLoginThrottle(t *testing.T, kind string) {
	{
		// A private Redis: the per-address count must not see other tests'
		// failures from the same loopback address.
		srv := stack.StartWith(t, kind, testenv.StartRedis(t).URL)
		a := stack.Signup(t, srv.URL, "throttle")
		login := func(password string) stack.Response {
			return stack.Call(t, "POST", srv.URL+"/api/auth/login", "", map[string]any{"login": a.Username, "password": password})
		}
		for i := 0; i < 4; i++ {
			if r := login("wrong"); r.Status != 401 {
				t.Fatalf("failure %d: %d %s", i+1, r.Status, r.Raw)
			}
		}
		if r := login(a.Password); r.Status != 200 {
			t.Fatalf("good password after 4 failures: %d %s", r.Status, r.Raw)
		}
		// The success cleared the count: five more failures are needed.
		for i := 0; i < 5; i++ {
			if r := login("wrong"); r.Status != 401 {
				t.Fatalf("failure %d after reset: %d %s", i+1, r.Status, r.Raw)
			}
		}
		r := login(a.Password)
		if r.Status != 429 || r.ErrorCode() != "rate_limited" {
			t.Fatalf("6th attempt: %d %s", r.Status, r.Raw)
		}
		if ra := r.Header.Get("Retry-After"); ra == "" || ra == "0" {
			t.Fatalf("no Retry-After: %v", r.Header)
		}
		// The per-address limit: 20 failures across other logins.
		for i := 0; i < 20; i++ {
			stack.Call(t, "POST", srv.URL+"/api/auth/login", "", map[string]any{"login": fmt.Sprintf("ghost%02d", i), "password": "wrong"})
		}
		b := stack.Signup(t, srv.URL, "victim")
		r = stack.Call(t, "POST", srv.URL+"/api/auth/login", "", map[string]any{"login": b.Username, "password": b.Password})
		if r.Status != 429 || r.Header.Get("Retry-After") == "" {
			t.Fatalf("after 20 failures from one address: %d %s", r.Status, r.Raw)
		}
	}
}

func TestSessionsEnd(t *testing.T) {
	stack.ForEachStore(t, func(t *testing.T, srv *stack.Server) {
		a := stack.Signup(t, srv.URL, "sess")
		loginToken := func() string {
			r := stack.Call(t, "POST", srv.URL+"/api/auth/login", "", map[string]any{"login": a.Username, "password": a.Password})
			if r.Status != 200 {
				t.Fatalf("login: %d %s", r.Status, r.Raw)
			}
			return r.Body["token"].(string)
		}
		me := func(tok string) int { return stack.Call(t, "GET", srv.URL+"/api/me", tok, nil).Status }

		t.Run("logout ends the token at once", func(t *testing.T) {
			tok := loginToken()
			if me(tok) != 200 {
				t.Fatal("fresh token refused")
			}
			if r := stack.Call(t, "POST", srv.URL+"/api/auth/logout", tok, nil); r.Status != 204 {
				t.Fatalf("logout: %d %s", r.Status, r.Raw)
			}
			if s := me(tok); s != 401 {
				t.Fatalf("token after logout: %d", s)
			}
			if me(a.Token) != 200 {
				t.Fatal("logout ended another session")
			}
		})
		t.Run("list and end one session from another", func(t *testing.T) {
			other := loginToken()
			r := stack.Call(t, "GET", srv.URL+"/api/auth/sessions", a.Token, nil)
			if r.Status != 200 {
				t.Fatalf("list: %d %s", r.Status, r.Raw)
			}
			var otherID string
			current := 0
			for _, s := range r.Body["sessions"].([]any) {
				s := s.(map[string]any)
				for _, k := range []string{"id", "createdAt", "lastSeenAt", "userAgent", "current"} {
					if _, ok := s[k]; !ok {
						t.Fatalf("session lacks %q: %s", k, r.Raw)
					}
				}
				if s["current"] == true {
					current++
				} else {
					otherID = s["id"].(string)
				}
			}
			if current != 1 || otherID == "" {
				t.Fatalf("want one current and others: %s", r.Raw)
			}
			// End the newest non-current session: the one just created.
			sessions := r.Body["sessions"].([]any)
			otherID = sessions[len(sessions)-1].(map[string]any)["id"].(string)
			if r := stack.Call(t, "DELETE", srv.URL+"/api/auth/sessions/"+otherID, a.Token, nil); r.Status != 204 {
				t.Fatalf("end session: %d %s", r.Status, r.Raw)
			}
			if s := me(other); s != 401 {
				t.Fatalf("ended session's token: %d", s)
			}
			if r := stack.Call(t, "DELETE", srv.URL+"/api/auth/sessions/"+otherID, a.Token, nil); r.Status != 404 {
				t.Fatalf("ending it again: %d %s", r.Status, r.Raw)
			}
			b := stack.Signup(t, srv.URL, "other")
			if r := stack.Call(t, "DELETE", srv.URL+"/api/auth/sessions/"+otherID, b.Token, nil); r.Status != 404 {
				t.Fatalf("another user's session: %d %s", r.Status, r.Raw)
			}
		})
		t.Run("password change ends other sessions", func(t *testing.T) {
			other := loginToken()
			keep := loginToken()
			r := stack.Call(t, "PATCH", srv.URL+"/api/me", keep, map[string]any{"currentPassword": "wrong password", "newPassword": "a new password"})
			if r.Status != 400 {
				t.Fatalf("wrong current password: %d %s", r.Status, r.Raw)
			}
			r = stack.Call(t, "PATCH", srv.URL+"/api/me", keep, map[string]any{"currentPassword": a.Password, "newPassword": "a new password", "displayName": "Renamed"})
			if r.Status != 200 || r.Body["displayName"] != "Renamed" {
				t.Fatalf("change password: %d %s", r.Status, r.Raw)
			}
			if me(other) != 401 || me(a.Token) != 401 {
				t.Fatal("other sessions survived a password change")
			}
			if me(keep) != 200 {
				t.Fatal("the session that changed the password was ended")
			}
			a.Password = "a new password"
			a.Token = keep
		})
		t.Run("logout-all", func(t *testing.T) {
			t1, t2 := loginToken(), loginToken()
			if r := stack.Call(t, "POST", srv.URL+"/api/auth/logout-all", t1, nil); r.Status != 204 {
				t.Fatalf("logout-all: %d %s", r.Status, r.Raw)
			}
			if me(t1) != 401 || me(t2) != 401 || me(a.Token) != 401 {
				t.Fatal("a session survived logout-all")
			}
		})
	})
}

func TestForgedTokens(t *testing.T) {
	srv := stack.Start(t, "sqlite")
	a := stack.Signup(t, srv.URL, "forge")
	good, _, err := jwt.NewParser().ParseUnverified(a.Token, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	claims := good.Claims.(jwt.MapClaims)
	with := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{}
		for k, v := range claims {
			c[k] = v
		}
		change(c)
		return c
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(m jwt.SigningMethod, key any, c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	secret := []byte(stack.Secret)
	cases := map[string]string{
		"expired":          sign(jwt.SigningMethodHS256, secret, with(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() })),
		"no exp":           sign(jwt.SigningMethodHS256, secret, with(func(c jwt.MapClaims) { delete(c, "exp") })),
		"another key":      sign(jwt.SigningMethodHS256, []byte("some-other-secret-0123456789abcdef"), claims),
		"alg none":         sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims),
		"HS384 same key":   sign(jwt.SigningMethodHS384, secret, claims),
		"RS256":            sign(jwt.SigningMethodRS256, rsaKey, claims),
		"missing sid":      sign(jwt.SigningMethodHS256, secret, with(func(c jwt.MapClaims) { delete(c, "sid") })),
		"unknown sid":      sign(jwt.SigningMethodHS256, secret, with(func(c jwt.MapClaims) { c["sid"] = "0123456789abcdef01234567" })),
		"another user sub": sign(jwt.SigningMethodHS256, secret, with(func(c jwt.MapClaims) { c["sub"] = "0123456789abcdef01234567" })),
		"garbage":          "not.a.token",
	}
	if r := stack.Call(t, "GET", srv.URL+"/api/me", sign(jwt.SigningMethodHS256, secret, claims), nil); r.Status != 200 {
		t.Fatalf("control: a re-signed genuine token is refused: %d %s", r.Status, r.Raw)
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			r := stack.Call(t, "GET", srv.URL+"/api/me", tok, nil)
			if r.Status != 401 || r.ErrorCode() != "unauthorized" {
				t.Fatalf("got %d %s", r.Status, r.Raw)
			}
		})
	}
	t.Run("no credentials", func(t *testing.T) {
		if r := stack.Call(t, "GET", srv.URL+"/api/me", "", nil); r.Status != 401 || r.ErrorCode() != "unauthorized" {
			t.Fatalf("got %d %s", r.Status, r.Raw)
		}
	})
	t.Run("cookie credential", func(t *testing.T) {
		req, _ := http.NewRequest("GET", srv.URL+"/api/me", nil)
		req.AddCookie(&http.Cookie{Name: "token", Value: a.Token})
		if r := stack.Do(t, req); r.Status != 200 {
			t.Fatalf("got %d %s", r.Status, r.Raw)
		}
	})
}

func TestSessionCacheFallbacks(t *testing.T) {
	for _, kind := range stack.Kinds {
		t.Run(kind, func(t *testing.T) {
			rds := testenv.StartRedis(t)
			srv := stack.StartWith(t, kind, rds.URL)
			a := stack.Signup(t, srv.URL, "cache")
			rdb := redis.NewClient(&redis.Options{Addr: rds.Addr})
			defer rdb.Close()
			ctx := context.Background()
			claims := jwt.MapClaims{}
			if _, _, err := jwt.NewParser().ParseUnverified(a.Token, claims); err != nil {
				t.Fatal(err)
			}
			sid := claims["sid"].(string)
			if ttl := rdb.TTL(ctx, "session:"+sid).Val(); ttl <= 0 || ttl > 168*time.Hour {
				t.Fatalf("session:%s TTL = %v, want the time left", sid, ttl)
			}
			if !rdb.SIsMember(ctx, "user:"+a.ID+":sessions", sid).Val() {
				t.Fatal("session not in user:<uid>:sessions")
			}

			if err := rdb.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			if r := stack.Call(t, "GET", srv.URL+"/api/me", a.Token, nil); r.Status != 200 {
				t.Fatalf("after FLUSHALL: %d %s", r.Status, r.Raw)
			}
			if rdb.Exists(ctx, "session:"+sid).Val() != 1 {
				t.Fatal("a cache miss did not refill the cache")
			}

			rds.Stop()
			if r := stack.Call(t, "GET", srv.URL+"/api/me", a.Token, nil); r.Status != 200 {
				t.Fatalf("with Redis down: %d %s", r.Status, r.Raw)
			}
			r := stack.Call(t, "POST", srv.URL+"/api/auth/login", "", map[string]any{"login": a.Username, "password": a.Password})
			if r.Status != 200 {
				t.Fatalf("login with Redis down: %d %s", r.Status, r.Raw)
			}
			tok := r.Body["token"].(string)
			if r := stack.Call(t, "POST", srv.URL+"/api/auth/logout", tok, nil); r.Status != 204 {
				t.Fatalf("logout with Redis down: %d %s", r.Status, r.Raw)
			}
			if r := stack.Call(t, "GET", srv.URL+"/api/me", tok, nil); r.Status != 401 {
				t.Fatalf("logged-out token with Redis down: %d", r.Status)
			}
		})
	}
}

func TestErrorShapes(t *testing.T) {
	srv := stack.Start(t, "sqlite")
	a := stack.Signup(t, srv.URL, "shape")
	req := func(method, path, ctype string, body []byte) stack.Response {
		r, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(string(body)))
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		r.Header.Set("Authorization", "Bearer "+a.Token)
		return stack.Do(t, r)
	}
	huge := []byte(`{"displayName":"` + strings.Repeat("x", 1<<20) + `"}`)
	cases := []struct {
		name   string
		resp   stack.Response
		status int
		code   string
	}{
		{"unknown route", req("GET", "/api/nope", "", nil), 404, "not_found"},
		{"unknown top-level route", req("GET", "/nope/deeper", "", nil), 404, "not_found"},
		{"method not allowed", req("PUT", "/api/auth/login", "", nil), 405, "invalid_input"},
		{"malformed JSON", req("POST", "/api/auth/login", "application/json", []byte(`{"login":`)), 400, "invalid_input"},
		{"JSON array", req("POST", "/api/auth/login", "application/json", []byte(`[1,2]`)), 400, "invalid_input"},
		{"two objects", req("POST", "/api/auth/login", "application/json", []byte(`{}{}`)), 400, "invalid_input"},
		{"wrong content type", req("POST", "/api/auth/login", "text/plain", []byte(`{}`)), 415, "unsupported_media_type"},
		{"huge body", req("PATCH", "/api/me", "application/json", huge), 413, "too_large"},
		{"malformed user id", req("GET", "/api/users/zzz", "", nil), 404, "not_found"},
		{"unknown user id", req("GET", "/api/users/0123456789abcdef01234567", "", nil), 404, "not_found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.resp.Status != c.status || c.resp.ErrorCode() != c.code {
				t.Fatalf("got %d %s, want %d %s", c.resp.Status, c.resp.Raw, c.status, c.code)
			}
			e := c.resp.Body["error"].(map[string]any)
			if msg, _ := e["message"].(string); msg == "" || strings.Contains(msg, "goroutine") || strings.Contains(msg, ".go:") {
				t.Fatalf("message missing or leaks internals: %q", msg)
			}
		})
	}
}

func TestHealthAndMetrics(t *testing.T) {
	srv := stack.Start(t, "sqlite")
	if r := stack.Call(t, "GET", srv.URL+"/healthz", "", nil); r.Status != 200 {
		t.Fatalf("healthz: %d", r.Status)
	}
	if r := stack.Call(t, "GET", srv.URL+"/readyz", "", nil); r.Status != 200 {
		t.Fatalf("readyz: %d %s", r.Status, r.Raw)
	}
	stack.Call(t, "GET", srv.URL+"/api/me", "", nil)
	r := stack.Call(t, "GET", srv.URL+"/metrics", "", nil)
	body := string(r.Raw)
	for _, want := range []string{`parley_http_requests_total{method="GET",route="/api/me",status="401"}`, "parley_http_request_duration_seconds_bucket", "go_goroutines"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestReadyzReportsRedisDown(t *testing.T) {
	rds := testenv.StartRedis(t)
	srv := stack.StartWith(t, "sqlite", rds.URL)
	rds.Stop()
	r := stack.Call(t, "GET", srv.URL+"/readyz", "", nil)
	if r.Status != 503 || r.ErrorCode() != "unavailable" {
		t.Fatalf("readyz with Redis down: %d %s", r.Status, r.Raw)
	}
}
