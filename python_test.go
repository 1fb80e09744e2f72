package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestPythonSocketIOClient drives Parley with python-socketio (Debian's
// python3-socketio, installed by scripts/test-deps.sh) through handlers that
// take exactly one argument, over each transport: what a Python client sees
// with connection-state recovery off, the default.
func TestPythonSocketIOClient(t *testing.T) {
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import socketio, requests, websocket").Run(); err != nil {
		t.Fatalf("%s cannot import python-socketio: run `go tool task test` (or bash scripts/test-deps.sh) first: %v", python, err)
	}
	srv := startServer(t, testConfig(t, "sqlite"))
	for _, transports := range []string{"websocket", "polling", "polling,websocket"} {
		t.Run(transports, func(t *testing.T) {
			// Fresh users each time: B must hear A come online.
			a, b := signup(t, srv, "pya"), signup(t, srv, "pyb")
			r := call(t, "POST", srv.URL+"/api/chats", a.Token, map[string]any{"type": "direct", "userId": b.ID})
			if r.Status != http.StatusCreated {
				t.Fatalf("create direct chat: %d %s", r.Status, r.Raw)
			}
			chatID := r.Body["id"].(string)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, python, "scripts/python/chat.py")
			cmd.Env = append(os.Environ(),
				"PARLEY_URL="+srv.URL, "PARLEY_CHAT="+chatID, "PARLEY_PASSWORD="+a.Password,
				"PARLEY_A_LOGIN="+a.Username, "PARLEY_B_LOGIN="+b.Username, "PARLEY_TRANSPORTS="+transports,
			)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("chat.py: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
			}
			var out struct {
				OK       bool           `json:"ok"`
				Message  map[string]any `json:"message"`
				Presence map[string]any `json:"presence"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || !out.OK {
				t.Fatalf("chat.py said %s (%v); stderr: %s", stdout.String(), err, stderr.String())
			}
			if out.Message["text"] != "hello from python" || out.Message["chatId"] != chatID || out.Message["senderId"] != a.ID {
				t.Fatalf("B got %v", out.Message)
			}
			if out.Presence["userId"] != a.ID || out.Presence["online"] != true {
				t.Fatalf("presence %v", out.Presence)
			}
			// The handlers saw exactly one argument: a TypeError in one
			// would be logged by python-socketio and the event lost.
			if bytes.Contains(stderr.Bytes(), []byte("TypeError")) {
				t.Fatalf("a one-argument handler failed:\n%s", stderr.String())
			}
		})
	}
}
