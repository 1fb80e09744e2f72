package eio

import (
	"context"
	"net"
	"strings"

	"github.com/gobwas/ws"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"
)

// TestIdleMemory reports the Go memory (heap and stacks) per idle websocket socket that has
// finished its handshake. It is a measurement, not an assertion, so it runs only when asked:
// PARLEY_EIO_MEMTEST=2000 go test -run TestIdleMemory -v ./engine/eio/
// The clients live in the same process, so the figure includes their side of each connection
// (a net.Conn each).
func TestIdleMemory(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PARLEY_EIO_MEMTEST"))
	if n <= 0 {
		t.Skip("set PARLEY_EIO_MEMTEST=<sockets> to measure")
	}
	opened := make(chan struct{}, n)
	srv := NewServer(Options{PingInterval: time.Hour, PingTimeout: time.Hour, OnConnection: func(s *Socket, _ *http.Request) {
		s.SetHandler(nopHandler{})
		opened <- struct{}{}
	}})
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { srv.Close(); hs.CloseClientConnections(); hs.Close() })
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	clients := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range clients {
			c.Close()
		}
	})
	for range n {
		conn, br, _, err := ws.Dial(context.Background(), "ws"+strings.TrimPrefix(hs.URL, "http")+"/?EIO=4&transport=websocket")
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, conn)
		c := &wsClient{conn: conn, r: conn}
		if br != nil {
			c.r = br
		}
		c.readText(t)
		_ = conn.SetReadDeadline(time.Time{})
		if br != nil {
			if br.Buffered() > 0 {
				t.Fatal("more than the open packet arrived")
			}
			ws.PutReader(br) // the client's buffer is not the server's memory
		}
		wait(t, opened, "connection")
	}
	runtime.GC()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	heap := (int64(after.HeapInuse) - int64(before.HeapInuse)) / int64(n)
	stack := (int64(after.StackInuse) - int64(before.StackInuse)) / int64(n)
	t.Logf("%d idle websocket sockets: %d B heap + %d B stack per socket (goroutines %d)", n, heap, stack, runtime.NumGoroutine())
	if path := os.Getenv("PARLEY_EIO_MEMPROF"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		_ = pprof.WriteHeapProfile(f)
		f.Close()
	}
	runtime.KeepAlive(clients)
}

type nopHandler struct{}

func (nopHandler) OnMessage([]byte, bool) {}
func (nopHandler) OnClose(string)         {}
