package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/parley-chat/parley/internal/testenv/sioraw"
)

// TestPProfOnLoopbackOnly: PPROF=1 serves profiles on their own loopback
// listener; the public port never does.
func TestPProfOnLoopbackOnly(t *testing.T) {
	cfg := testConfig(t, "sqlite")
	cfg.PProf, cfg.PProfAddr = true, "127.0.0.1:0"
	srv := startServer(t, cfg)
	m := regexp.MustCompile(`msg="pprof listening" addr=(127\.0\.0\.1:\d+)`).FindStringSubmatch(srv.logs.String())
	if m == nil {
		t.Fatalf("no pprof listener logged:\n%s", srv.logs.String())
	}
	if r := call(t, "GET", "http://"+m[1]+"/debug/pprof/cmdline", "", nil); r.Status != http.StatusOK {
		t.Fatalf("pprof on loopback: %d", r.Status)
	}
	if r := call(t, "GET", srv.URL+"/debug/pprof/cmdline", "", nil); r.Status == http.StatusOK {
		t.Fatal("pprof served on the public port")
	}
}

// TestEngineMetrics: /metrics shows the engine's series, and a connected
// socket counts.
func TestEngineMetrics(t *testing.T) {
	srv := startServer(t, testConfig(t, "sqlite"))
	a := signup(t, srv, "met")
	sioraw.Dial(t, srv.URL, "", nil).MustConnect(a.Token)
	// The Engine.IO socket opened before the namespace CONNECT was answered.
	body := string(call(t, "GET", srv.URL+"/metrics", "", nil).Raw)
	for _, name := range []string{"parley_engine_handshakes_total", "parley_engine_bytes_out_total", "parley_engine_queue_overflows_total"} {
		if !strings.Contains(body, name) {
			t.Fatalf("/metrics has no %s", name)
		}
	}
	if !strings.Contains(body, "\nparley_engine_sockets_open 1\n") {
		t.Fatalf("parley_engine_sockets_open does not count the socket:\n%s", body)
	}
}
