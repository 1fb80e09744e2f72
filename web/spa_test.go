package web

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestWebRoot serves a built single-page app as create-react-app lays it
// out, in place of the embedded client.
func TestWebRoot(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"index.html":                 "<!doctype html><title>Talk-A-Tive</title>",
		"favicon.ico":                "icon",
		"static/js/main.1a2b3c4d.js": "console.log('app')",
		"static/css/main.5e6f.css":   "body{}",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := CheckWebRoot(dir); err != nil {
		t.Fatal(err)
	}
	if err := CheckWebRoot(t.TempDir()); err == nil {
		t.Fatal("a folder without index.html passes CheckWebRoot")
	}
	h := NewRouter(Deps{Log: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(), WebRoot: dir, Socket: fakeSocketServer})

	cases := []struct {
		method, path string
		status       int
		body, cache  string
	}{
		{"GET", "/", 200, files["index.html"], "no-cache"},
		{"GET", "/chats", 200, files["index.html"], "no-cache"}, // the app's own route
		{"GET", "/deep/link/x", 200, files["index.html"], "no-cache"},
		{"HEAD", "/chats", 200, "", "no-cache"},
		{"GET", "/static/js/main.1a2b3c4d.js", 200, files["static/js/main.1a2b3c4d.js"], "public, max-age=31536000, immutable"},
		{"GET", "/favicon.ico", 200, "icon", "no-cache"},
		{"GET", "/static/js/missing.js", 200, files["index.html"], "no-cache"},
		{"GET", "/../../etc/passwd", 200, files["index.html"], "no-cache"},
		{"GET", "/api/nope", 404, `"not_found"`, ""},
		{"GET", "/api", 404, `"not_found"`, ""},
		{"POST", "/chats", 404, `"not_found"`, ""},
		{"GET", "/healthz", 200, `"ok"`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			resp := get(t, h, tc.method, tc.path, nil)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.body) || resp.Header.Get("Cache-Control") != tc.cache {
				t.Fatalf("%d %q cache %q, want %d %q cache %q", resp.StatusCode, body, resp.Header.Get("Cache-Control"), tc.status, tc.body, tc.cache)
			}
		})
	}
	// The Socket.IO server still answers its path.
	if resp := get(t, h, "GET", "/socket.io/?EIO=4&transport=polling", nil); resp.Header.Get("X-Socket-Server") != "yes" {
		t.Fatal("/socket.io/ does not reach the socket server")
	}
}
