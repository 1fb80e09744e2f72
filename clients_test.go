package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// runNodeSuite runs `npm test` in dir against a live Parley. The suites are
// installed by scripts/test-deps.sh (go tool task test does it).
func runNodeSuite(t *testing.T, dir string, srv *testServer, extraEnv ...string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); err != nil {
		t.Fatalf("%s has no node_modules: run `go tool task test` (or bash scripts/test-deps.sh) first", dir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "test", "--silent")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append([]string{"PARLEY_URL=" + srv.URL, "NO_COLOR=1"}, extraEnv...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil || testing.Verbose() {
		t.Logf("%s:\n%s", dir, out.String())
	}
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
}

// TestSocketIOClients drives Parley with the real npm socket.io-client, 4.x
// (websocket, polling, upgrade) and 2.x (Engine.IO 3), on both stores:
// on SQLite with connection-state recovery turned on (RECOVERY_WINDOW, the
// suite's recovery test runs), on MongoDB with the default, off.
func TestSocketIOClients(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			cfg := testConfig(t, kind)
			var env []string
			if kind == "sqlite" {
				cfg.RecoveryWindow = 2 * time.Minute
				env = append(env, "PARLEY_RECOVERY=1")
			}
			runNodeSuite(t, "scripts/js", startServer(t, cfg), env...)
		})
	}
}

// TestBrowserClient runs the embedded web client in headless Chromium.
func TestBrowserClient(t *testing.T) {
	if os.Getenv("PARLEY_SKIP_BROWSER") != "" {
		t.Skip("PARLEY_SKIP_BROWSER is set")
	}
	srv := startServer(t, testConfig(t, "sqlite"))
	shots, err := filepath.Abs("scripts/browser/screenshots")
	if err != nil {
		t.Fatal(err)
	}
	runNodeSuite(t, "scripts/browser", srv, "SCREENSHOT_DIR="+shots)
}

// TestMERNFrontendFlows replays the MERN chat app's frontend flows with the
// socket.io-client and axios versions it locks (scripts/mern), on both stores.
func TestMERNFrontendFlows(t *testing.T) {
	forEachStore(t, func(t *testing.T, srv *testServer, _ Config) {
		runNodeSuite(t, "scripts/mern", srv)
	})
}
