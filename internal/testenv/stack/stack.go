// Package stack runs Parley's whole service stack for package tests: the
// real store (SQLite or FerretDB), a real Redis, every service wired by
// internal/app, served on a loopback port. Tests of chat/, files/ and web/
// that assert what a user sees over HTTP and sockets use it, so they live
// beside the code; only what needs the process itself (configuration,
// start-up, shutdown, kill -9) stays in the root package.
package stack

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/files"
	"github.com/parley-chat/parley/internal/app"
	"github.com/parley-chat/parley/internal/ratelimit"
	"github.com/parley-chat/parley/internal/redisconn"
	"github.com/parley-chat/parley/internal/testenv"
	"github.com/parley-chat/parley/internal/testenv/sioraw"
	"github.com/parley-chat/parley/session"
	"github.com/parley-chat/parley/store"
	mongostore "github.com/parley-chat/parley/store/mongo"
	"github.com/parley-chat/parley/store/sqlite"
)

// Secret signs the stack's tokens, for tests that forge them.
const Secret = "test-secret-0123456789abcdef0123456789abcdef"

// Kinds are the store engines every behaviour test runs against.
var Kinds = []string{"sqlite", "mongo"}

// OrphanFileTTL is ORPHAN_FILE_TTL's default, the sweep's cut-off in main.
const OrphanFileTTL = 24 * time.Hour

// Server is a running stack.
type Server struct {
	URL  string
	Kind string
	// Store is the stack's own store, to look at what the API cannot show.
	Store store.Store
	// DataDir holds the SQLite file; MongoURI and MongoDB name the database.
	DataDir, MongoURI, MongoDB string
	App                        *app.App
	// Logs holds everything the stack logged, at debug level.
	Logs *SyncBuffer
}

// SyncBuffer is a bytes.Buffer safe for the server's goroutines.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Start runs the stack on store kind ("sqlite" or "mongo") until the test
// ends, with the shared test Redis.
func Start(t *testing.T, kind string) *Server {
	t.Helper()
	return StartWith(t, kind, testenv.RedisURL(t))
}

// StartWith is Start with the Redis at redisURL: a private one, for a test
// that counts per-address failures or stops Redis.
func StartWith(t *testing.T, kind, redisURL string) *Server {
	t.Helper()
	return start(t, kind, redisURL, "", false)
}

// start builds a stack; mongoDB names an existing database to share (""
// for a fresh one), and cluster makes it a node of a cluster on Redis.
func start(t *testing.T, kind, redisURL, mongoDB string, cluster bool) *Server {
	t.Helper()
	logs := &SyncBuffer{}
	log := slog.New(slog.NewMultiHandler(
		slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}),
		slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}),
	))
	s := &Server{Kind: kind, DataDir: t.TempDir(), Logs: logs}
	var err error
	if kind == "mongo" {
		s.MongoURI, s.MongoDB = testenv.MongoURI(t), mongoDB
		if s.MongoDB == "" {
			s.MongoDB = testenv.MongoDatabase(t)
		}
		s.Store, err = mongostore.Open(t.Context(), s.MongoURI, s.MongoDB)
	} else {
		s.Store, err = sqlite.Open(t.Context(), filepath.Join(s.DataDir, "parley.db"))
	}
	if err != nil {
		t.Fatalf("open %s store: %v", kind, err)
	}
	t.Cleanup(func() { _ = s.Store.Close() })
	rdb, err := redisconn.Open(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	opts := app.Options{
		Log: log, Store: s.Store, Cache: session.NewRedisCache(rdb),
		Limiter: ratelimit.NewFallback(ratelimit.NewRedis(rdb), log),
		Secret:  []byte(Secret), BcryptCost: 4, TokenTTL: 168 * time.Hour, FileLimits: files.DefaultLimits,
	}
	if cluster {
		opts.Redis = rdb
	}
	s.App, err = app.Build(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.App.Close)
	srv := httptest.NewServer(s.App.Handler)
	// Long-polling requests are open handlers: the sockets close first, or
	// Close would wait for them.
	t.Cleanup(func() { s.App.Sockets.Close(); srv.Close() })
	s.URL = srv.URL
	return s
}

// ForEachStore runs fn once per store engine, each with its own stack.
func ForEachStore(t *testing.T, fn func(t *testing.T, srv *Server)) {
	for _, kind := range Kinds {
		t.Run(kind, func(t *testing.T) { fn(t, Start(t, kind)) })
	}
}

// Response is an HTTP answer, decoded when it is JSON.
type Response struct {
	Status int
	Header http.Header
	Raw    []byte
	Body   map[string]any
}

// ErrorCode is the contract's error code in the body, or "".
func (r Response) ErrorCode() string {
	e, _ := r.Body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// Call sends a request with an optional JSON body and bearer token.
func Call(t *testing.T, method, url, token string, body any) Response {
	t.Helper()
	return Do(t, Request(t, method, url, token, body))
}

// Request builds a request with an optional body (JSON-encoded unless it is
// already bytes or a string) and bearer token.
func Request(t testing.TB, method, url, token string, body any) *http.Request {
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

// Do sends req and reads the whole answer.
func Do(t *testing.T, req *http.Request) Response {
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
	r := Response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.Body); err != nil {
			t.Fatalf("%s %s: body is not a JSON object: %v: %s", req.Method, req.URL, err, raw)
		}
	}
	return r
}

// Account is a signed-up user.
type Account struct {
	ID, Username, Email, Password, Token string
}

// Signup creates a fresh account named after prefix on the server at url.
func Signup(t *testing.T, url, prefix string) Account {
	t.Helper()
	name := prefix + "_" + RandomHex(4)
	a := Account{Username: name, Email: name + "@example.com", Password: "correct horse battery"}
	r := Call(t, "POST", url+"/api/auth/signup", "", map[string]any{"username": a.Username, "email": a.Email, "password": a.Password})
	if r.Status != http.StatusCreated {
		t.Fatalf("signup %s: %d %s", name, r.Status, r.Raw)
	}
	a.Token = r.Body["token"].(string)
	a.ID = r.Body["user"].(map[string]any)["id"].(string)
	return a
}

// RandomHex is n random bytes in hex.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ConnectSock opens a websocket to the server at url and connects the
// namespace with auth {token}.
func ConnectSock(t testing.TB, url, token string) *sioraw.Client {
	t.Helper()
	c := sioraw.Dial(t, url, "", nil)
	c.MustConnect(token)
	return c
}
