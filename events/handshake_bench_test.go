package events_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parley-chat/parley/auth"
	"github.com/parley-chat/parley/files"
	"github.com/parley-chat/parley/internal/app"
	"github.com/parley-chat/parley/session"
	"github.com/parley-chat/parley/store/sqlite"
)

// benchStack is Parley on its embedded defaults (SQLite, the in-memory
// session cache and limiter, one node), as the load generator's app modes
// measure it, with users in groups of groupSize, each with a token.
type benchStack struct {
	url    string
	tokens []string
}

const groupSize = 10

func startBenchStack(b *testing.B, users int) *benchStack {
	b.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	log := slog.New(slog.DiscardHandler)
	a, err := app.Build(app.Options{
		Log: log, Store: st, Cache: session.NewMemoryCache(),
		Secret: []byte("bench-secret-0123456789abcdef0123456789abcdef"), BcryptCost: 4,
		TokenTTL: time.Hour, FileLimits: files.DefaultLimits,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(a.Close)
	srv := httptest.NewServer(a.Handler)
	b.Cleanup(func() { a.Sockets.Close(); srv.Close() })

	s := &benchStack{url: srv.URL}
	ids := make([]string, users)
	run := strings.ReplaceAll(fmt.Sprint(time.Now().UnixNano()%1e9), "-", "")
	for i := range users {
		name := fmt.Sprintf("hs%s_%d", run, i)
		g, err := a.Accounts.Signup(ctx, auth.SignupInput{Username: name, Email: name + "@example.com", Password: "correct horse battery"})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = g.User.ID
		s.tokens = append(s.tokens, g.Token)
	}
	name := "bench"
	for i := 0; i+1 < users; i += groupSize {
		end := min(i+groupSize, users)
		if _, err := a.Chats.CreateGroup(ctx, ids[i], &name, ids[i+1:end]); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// connect opens a websocket and connects the namespace with token,
// returning once the server's CONNECT answer arrived.
func (s *benchStack) connect(token string) (*websocket.Conn, error) {
	u := "ws" + strings.TrimPrefix(s.url, "http") + "/socket.io/?EIO=4&transport=websocket"
	ws, resp, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if _, open, err := ws.ReadMessage(); err != nil || open[0] != '0' {
		ws.Close()
		return nil, fmt.Errorf("open packet %q: %v", open, err)
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`40{"token":"`+token+`"}`)); err != nil {
		ws.Close()
		return nil, err
	}
	for {
		_, f, err := ws.ReadMessage()
		if err != nil {
			ws.Close()
			return nil, err
		}
		if strings.HasPrefix(string(f), "40") {
			return ws, nil
		}
		if strings.HasPrefix(string(f), "44") {
			ws.Close()
			return nil, fmt.Errorf("refused: %s", f)
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkHandshake performs authenticated Socket.IO handshakes (a
// websocket, then CONNECT with a token) against an in-process server on
// SQLite, 32 at a time, each socket the first of its user (who shares a
// group of ten), held open until the end: what the load generator's
// app-connect does. cpu-µs/op is the whole process's CPU (the client
// included) per handshake; run with -benchtime=Nx so the users exist
// before the clock starts:
//
//	go test -run '^$' -bench Handshake -benchtime 2000x -count 5 ./events/
func BenchmarkHandshake(b *testing.B) {
	s := startBenchStack(b, b.N)
	var (
		next  atomic.Int64
		conns = make([]*websocket.Conn, b.N)
		wg    sync.WaitGroup
		errs  = make(chan error, 32)
	)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, t0 := cpuTime(), time.Now()
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				ws, err := s.connect(s.tokens[i])
				if err != nil {
					errs <- err
					return
				}
				conns[i] = ws
			}
		}()
	}
	wg.Wait()
	cpu, elapsed := cpuTime()-cpu0, time.Since(t0)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "handshakes/s")
	for _, ws := range conns {
		ws.Close()
	}
}

// BenchmarkIdleSocketMemory holds b.N idle authenticated sockets (each
// its user's first, users in groups of ten) and reports the server's heap
// per socket: bytes in use, from a heap profile that records every
// allocation, less whatever the client side (gorilla/websocket, this
// file) holds. PARLEY_HEAP_PROFILE=file writes the heap profile taken
// while the sockets are held. Goroutine stacks are not heap and not counted; the
// server's one read goroutine per socket adds about 4 KiB to RSS.
//
//	go test -run '^$' -bench IdleSocketMemory -benchtime 2000x -count 3 ./events/
func BenchmarkIdleSocketMemory(b *testing.B) {
	s := startBenchStack(b, b.N)
	prev := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = prev }()
	before := serverHeap()
	conns := make([]*websocket.Conn, b.N)
	for i := range conns {
		ws, err := s.connect(s.tokens[i])
		if err != nil {
			b.Fatal(err)
		}
		conns[i] = ws
	}
	after := serverHeap()
	b.ReportMetric(float64(after-before)/float64(b.N), "server-B/socket")
	if path := os.Getenv("PARLEY_HEAP_PROFILE"); path != "" {
		// The heap while the sockets are held, for go tool pprof.
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			b.Fatal(err)
		}
	}
	for _, ws := range conns {
		ws.Close()
	}
}

// serverHeap is the heap in use, after two collections, less what was
// allocated from the client side.
func serverHeap() int64 {
	// The profile shows the heap as of the last completed collection.
	runtime.GC()
	runtime.GC()
	var recs []runtime.MemProfileRecord
	for {
		n, ok := runtime.MemProfile(recs, true)
		if ok {
			recs = recs[:n]
			break
		}
		recs = make([]runtime.MemProfileRecord, n+100)
	}
	var total int64
	for _, r := range recs {
		if !clientSide(r.Stack()) {
			total += r.InUseBytes()
		}
	}
	return total
}

func clientSide(stack []uintptr) bool {
	frames := runtime.CallersFrames(stack)
	for {
		f, more := frames.Next()
		if strings.HasPrefix(f.Function, "github.com/gorilla/websocket.") ||
			strings.HasPrefix(f.Function, "github.com/parley-chat/parley/events_test.") {
			return true
		}
		if !more {
			return false
		}
	}
}
