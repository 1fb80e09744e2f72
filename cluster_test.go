package main

import (
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/testenv"
	"github.com/parley-chat/parley/internal/testenv/sioraw"
)

// A node killed with SIGKILL costs its users nothing but a reconnect: the
// other nodes show them offline within 30 s (one heartbeat silence and a
// reap), and on another node they catch up with chat:history after their
// last seq.
func TestClusterNodeKilled(t *testing.T) {
	env := []string{"REDIS_URL=" + testenv.StartRedis(t).URL, "MONGO_URI=" + testenv.MongoURI(t),
		"MONGO_DB=" + testenv.MongoDatabase(t), "JWT_SECRET=" + testJWTSecret}
	doomed := startProcess(t, t.TempDir(), env...)
	survivor := startProcess(t, t.TempDir(), env...)
	n1, n2 := &testServer{URL: doomed.URL}, &testServer{URL: survivor.URL}
	a, b := signup(t, n1, "ka"), signup(t, n2, "kb")
	r := call(t, "POST", n1.URL+"/api/chats", a.Token, map[string]any{"type": "direct", "userId": b.ID})
	if r.Status != http.StatusCreated {
		t.Fatalf("direct chat: %d %s", r.Status, r.Raw)
	}
	chatID := r.Body["id"].(string)

	sb := sioraw.Dial(t, n2.URL, "", nil)
	sb.MustConnect(b.Token)
	sa := sioraw.Dial(t, n1.URL, "", nil)
	sa.MustConnect(a.Token)
	sb.Payload("presence", func(m map[string]any) bool { return m["userId"] == a.ID && m["online"] == true })
	if ack := sa.CallOne("message:send", map[string]any{"chatId": chatID, "text": "before"}); ack["ok"] != true {
		t.Fatalf("send: %v", ack)
	}
	lastSeq := sb.Payload("message:new", func(m map[string]any) bool { return m["text"] == "before" })["seq"]

	if err := doomed.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-doomed.done
	// Within the contract's 30 s: the wait's guard, not a measure.
	defer func(d time.Duration) { sioraw.Timeout = d }(sioraw.Timeout)
	sioraw.Timeout = 30 * time.Second
	sb.Payload("presence", func(m map[string]any) bool { return m["userId"] == a.ID && m["online"] == false })

	if ack := sb.CallOne("message:send", map[string]any{"chatId": chatID, "text": "while away"}); ack["ok"] != true {
		t.Fatalf("send: %v", ack)
	}
	sa2 := sioraw.Dial(t, n2.URL, "", nil)
	sa2.MustConnect(a.Token)
	h := sa2.CallOne("chat:history", map[string]any{"chatId": chatID, "after": lastSeq})
	msgs, _ := h["messages"].([]any)
	if len(msgs) != 1 || msgs[0].(map[string]any)["text"] != "while away" {
		t.Fatalf("history after seq %v: %v", lastSeq, h)
	}
}
