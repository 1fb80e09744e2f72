package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/testenv"
)

// testJWTSecret signs tokens in tests that forge them.
const testJWTSecret = "test-secret-0123456789abcdef0123456789abcdef"

// storeKinds are the engines every end-to-end test runs against.
var storeKinds = []string{"sqlite", "mongo"}

// testConfig is a config for a server on a free loopback port with a real
// Redis and the given store, fast bcrypt and a fixed secret.
func testConfig(t *testing.T, kind string) Config {
	t.Helper()
	cfg, err := loadConfig(t.TempDir(), []string{
		"HOST=127.0.0.1", "PORT=0", "DATA_DIR=" + t.TempDir(), "BCRYPT_COST=4",
		"JWT_SECRET=" + testJWTSecret, "LOG_LEVEL=warn", "PARLEY_ENV=test",
		"REDIS_URL=" + testenv.RedisURL(t), "MERN_SETUP_TIMEOUT=1s",
	})
	if err != nil {
		t.Fatal(err)
	}
	if kind == "mongo" {
		cfg.MongoURI = testenv.MongoURI(t)
		cfg.MongoDB = testenv.MongoDatabase(t)
	}
	return cfg
}

// testServer is a running Parley.
type testServer struct {
	URL  string
	stop func()
	// logs holds everything the server logged, at debug level.
	logs *syncBuffer
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServer runs Parley with cfg until the test ends (or stop is called).
func startServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan string, 1)
	done := make(chan error, 1)
	logs := &syncBuffer{}
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

// response is an HTTP answer, decoded when it is JSON.
type response struct {
	Status int
	Header http.Header
	Raw    []byte
	Body   map[string]any
}

func (r response) errorCode() string {
	e, _ := r.Body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// call sends a request with an optional JSON body and bearer token.
func call(t *testing.T, method, url, token string, body any) response {
	t.Helper()
	return do(t, jsonRequest(t, method, url, token, body))
}

// jsonRequest builds a request with an optional body (JSON-encoded unless
// it is already bytes or a string) and bearer token.
func jsonRequest(t *testing.T, method, url, token string, body any) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case []byte:
			rd = bytes.NewReader(b)
		case string:
			rd = strings.NewReader(b)
		default:
			raw, err := json.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			rd = bytes.NewReader(raw)
		}
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

func do(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("read body: %v", err)
	}
	r := response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.Body); err != nil {
			t.Fatalf("%s %s: body is not a JSON object: %v: %s", req.Method, req.URL, err, raw)
		}
	}
	return r
}

// account is a signed-up user.
type account struct {
	ID, Username, Email, Password, Token string
}

// signup creates a fresh account named after prefix.
func signup(t *testing.T, srv *testServer, prefix string) account {
	t.Helper()
	name := prefix + "_" + randomHex(4)
	a := account{Username: name, Email: name + "@example.com", Password: "correct horse battery"}
	r := call(t, "POST", srv.URL+"/api/auth/signup", "", map[string]any{"username": a.Username, "email": a.Email, "password": a.Password})
	if r.Status != http.StatusCreated {
		t.Fatalf("signup %s: %d %s", name, r.Status, r.Raw)
	}
	a.Token = r.Body["token"].(string)
	a.ID = r.Body["user"].(map[string]any)["id"].(string)
	return a
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
