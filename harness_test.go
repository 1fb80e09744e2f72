package main

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/testenv"
	"github.com/parley-chat/parley/internal/testenv/stack"
)

// testJWTSecret signs tokens in tests that forge them.
const testJWTSecret = stack.Secret

// storeKinds are the engines every end-to-end test runs against.
var storeKinds = stack.Kinds

// testConfig is a config for a server on a free loopback port with a real
// Redis and the given store, fast bcrypt and a fixed secret.
func testConfig(t *testing.T, kind string) Config {
	t.Helper()
	cfg, err := loadConfig(t.TempDir(), append([]string{
		"HOST=127.0.0.1", "PORT=0", "DATA_DIR=" + t.TempDir(), "BCRYPT_COST=4",
		"JWT_SECRET=" + testJWTSecret, "LOG_LEVEL=warn", "PARLEY_ENV=test",
		"REDIS_URL=" + testenv.RedisURL(t), "MERN_SETUP_TIMEOUT=1s",
	}, noFloodLimits...))
	if err != nil {
		t.Fatal(err)
	}
	if kind == "mongo" {
		cfg.MongoURI = testenv.MongoURI(t)
		cfg.MongoDB = testenv.MongoDatabase(t)
	}
	return cfg
}

// noFloodLimits turns the per-address and per-user flood limits off: every
// test client comes from 127.0.0.1 and the tests share one Redis, so the
// defaults would count every test against one address. The limit tests
// (limits_test.go) set the limits they test; the login throttle stays on.
var noFloodLimits = []string{
	"LIMIT_REST=off", "LIMIT_SIGNUPS=off", "LIMIT_HANDSHAKES=off", "LIMIT_MESSAGE_SEND=off",
	"LIMIT_TYPING=off", "MAX_SOCKETS_PER_USER=0", "MAX_SOCKETS_PER_ADDRESS=0",
}

// testServer is a running Parley.
type testServer struct {
	URL  string
	stop func()
	// logs holds everything the server logged, at debug level.
	logs *stack.SyncBuffer
}

// startServer runs Parley with cfg until the test ends (or stop is called).
func startServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan string, 1)
	done := make(chan error, 1)
	logs := &stack.SyncBuffer{}
	log := slog.New(slog.NewMultiHandler(
		slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}),
		slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}),
	))
	go func() { done <- run(ctx, cfg, log, started) }()
	var addr string
	select {
	case addr = <-started:
	case err := <-done:
		cancel()
		t.Fatalf("server did not start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("server did not start within 30s")
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server stopped with error: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("server did not stop within 20s")
		}
	}
	t.Cleanup(stop)
	return &testServer{URL: "http://" + addr, stop: stop, logs: logs}
}

// forEachStore runs fn once per store engine, each with its own server.
func forEachStore(t *testing.T, fn func(t *testing.T, srv *testServer, cfg Config)) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			cfg := testConfig(t, kind)
			fn(t, startServer(t, cfg), cfg)
		})
	}
}

// The HTTP helpers are the package harness's (internal/testenv/stack), so
// the root and the package tests speak alike.
type (
	response = stack.Response
	account  = stack.Account
)

var call = stack.Call

// signup creates a fresh account named after prefix.
func signup(t *testing.T, srv *testServer, prefix string) account {
	t.Helper()
	return stack.Signup(t, srv.URL, prefix)
}

// directChat opens the direct chat of a and b on srv and returns its id.
func directChat(t *testing.T, srv *testServer, a, b account) string {
	t.Helper()
	r := call(t, "POST", srv.URL+"/api/chats", a.Token, map[string]any{"type": "direct", "userId": b.ID})
	if r.Status != 201 {
		t.Fatalf("create direct chat: %d %s", r.Status, r.Raw)
	}
	return r.Body["id"].(string)
}
