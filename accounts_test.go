package main

// The account tests that need the process itself: a restart that must keep
// users and the generated secret, and the logs of a whole run. The REST
// behaviour of accounts is tested in web/ (accounts_e2e_test.go).

import (
	"strings"
	"testing"

	"github.com/parley-chat/parley/internal/testenv"
)

func TestRestartKeepsUsersAndTokens(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			cfg := testConfig(t, kind)
			cfg.JWTSecret = "" // the generated secret is kept in DATA_DIR
			srv := startServer(t, cfg)
			a := signup(t, srv, "restart")
			srv.stop()
			srv = startServer(t, cfg)
			if r := call(t, "GET", srv.URL+"/api/me", a.Token, nil); r.Status != 200 || r.Body["id"] != a.ID {
				t.Fatalf("token after restart: %d %s", r.Status, r.Raw)
			}
			if r := call(t, "POST", srv.URL+"/api/auth/login", "", map[string]any{"login": a.Email, "password": a.Password}); r.Status != 200 {
				t.Fatalf("login after restart: %d %s", r.Status, r.Raw)
			}
		})
	}
}

// Nothing secret reaches the logs: passwords, their hashes, tokens, or the
// JWT secret, whatever the requests do (debug level, Redis down included).
func TestSecretsNeverLogged(t *testing.T) {
	rds := testenv.StartRedis(t)
	cfg := testConfig(t, "sqlite")
	cfg.RedisURL = rds.URL
	srv := startServer(t, cfg)
	a := signup(t, srv, "secret")
	r := call(t, "POST", srv.URL+"/api/auth/login", "", map[string]any{"login": a.Username, "password": a.Password})
	tok := r.Body["token"].(string)
	call(t, "POST", srv.URL+"/api/auth/login", "", map[string]any{"login": a.Username, "password": "wrong-password-xyz"})
	call(t, "GET", srv.URL+"/api/me", tok+"tampered", nil)
	call(t, "PATCH", srv.URL+"/api/me", tok, map[string]any{"currentPassword": a.Password, "newPassword": "another-secret-pw"})
	rds.Stop()
	call(t, "GET", srv.URL+"/api/me", tok, nil)
	call(t, "POST", srv.URL+"/api/auth/logout", tok, nil)
	srv.stop()

	logs := srv.logs.String()
	if !strings.Contains(logs, "session cache unreachable") {
		t.Fatalf("the run did not log what it should have (is the log captured?):\n%s", logs)
	}
	for name, secret := range map[string]string{
		"password": a.Password, "wrong password": "wrong-password-xyz", "new password": "another-secret-pw",
		"token": tok, "signup token": a.Token, "token signature": tok[strings.LastIndexByte(tok, '.')+1:],
		"JWT secret": testJWTSecret, "bcrypt hash prefix": "$2a$",
	} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs contain the %s", name)
		}
	}
}
