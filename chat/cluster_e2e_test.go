package chat_test

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/testenv/sioraw"
	"github.com/parley-chat/parley/internal/testenv/stack"
)

// Three nodes on one Redis and one database: users on different nodes chat
// as on one node (delivery, typing, read receipts, presence), a membership
// change on node A reaches a socket on node C, a logout on node A
// disconnects the session's sockets on B and C, and two nodes sending into
// one chat at once keep its history gap-free with every ack honoured.
func TestThreeNodes(t *testing.T) {
	nodes, _ := stack.StartCluster(t, 3)
	a, b, c := stack.Signup(t, nodes[0].URL, "na"), stack.Signup(t, nodes[1].URL, "nb"), stack.Signup(t, nodes[2].URL, "nc")
	chatID := newGroupChat(t, nodes[0], a, "three", b)

	sb := connectSock(t, nodes[1], b.Token)
	sa := connectSock(t, nodes[0], a.Token)
	if p := sb.Payload("presence", func(m map[string]any) bool { return m["userId"] == a.ID }); p["online"] != true {
		t.Fatalf("b saw %v", p)
	}

	// Delivery, typing and read receipts, A on node 0 to B on node 1.
	ack := sa.CallOne("message:send", map[string]any{"chatId": chatID, "text": "hello b", "clientMsgId": "m1"})
	if ack["ok"] != true {
		t.Fatalf("send: %v", ack)
	}
	sb.Payload("message:new", msgIn(chatID, "hello b"))
	sa.Emit(fmt.Sprintf(`["typing",{"chatId":%q,"isTyping":true}]`, chatID))
	if p := sb.Payload("typing", func(m map[string]any) bool { return m["userId"] == a.ID }); p["isTyping"] != true {
		t.Fatalf("typing: %v", p)
	}
	if r := sb.CallOne("message:read", map[string]any{"chatId": chatID, "seq": 1}); r["ok"] != true {
		t.Fatalf("read: %v", r)
	}
	sa.Payload("message:read", func(m map[string]any) bool { return m["userId"] == b.ID && m["seq"] == float64(1) })

	// C, on node 2, is added on node 0: C's socket joins the room on node 2
	// and node 2 lets C send at once.
	sc := connectSock(t, nodes[2], c.Token)
	if r := stack.Call(t, "POST", nodes[0].URL+"/api/chats/"+chatID+"/members", a.Token, map[string]any{"userIds": []string{c.ID}}); r.Status != http.StatusOK {
		t.Fatalf("add member: %d %s", r.Status, r.Raw)
	}
	sc.Payload("chat:new", chatIs(chatID))
	postMessage(t, nodes[0], a.Token, chatID, map[string]any{"text": "welcome c"}, http.StatusCreated)
	sc.Payload("message:new", msgIn(chatID, "welcome c"))
	postMessage(t, nodes[2], c.Token, chatID, map[string]any{"text": "thanks"}, http.StatusCreated)
	sa.Payload("message:new", msgIn(chatID, "thanks"))

	// Two nodes send into the chat at once: no send is refused, every ack
	// is honoured and the history has no gap. (Under -race on a loaded box
	// the writers' seq clashes can exceed chat.maxSeqRetries and a send is
	// refused as "too busy": the issue counts that as a visible collision.)
	const each = 20
	var wg sync.WaitGroup
	for i, s := range []struct {
		node  *stack.Server
		token string
	}{{nodes[0], a.Token}, {nodes[1], b.Token}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				r := stack.Call(t, "POST", s.node.URL+"/api/chats/"+chatID+"/messages", s.token,
					map[string]any{"text": fmt.Sprintf("c%d-%d", i, j), "clientMsgId": fmt.Sprintf("c%d-%d", i, j)})
				if r.Status != http.StatusCreated {
					t.Errorf("concurrent send: %d %s", r.Status, r.Raw)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d concurrent sends on two nodes, %d seq clashes renumbered", 2*each, seqClashes(t, nodes[0])+seqClashes(t, nodes[1]))
	hist := fullHistory(t, nodes[2], c.Token, chatID)
	var texts []string
	for i, m := range hist {
		if m["seq"] != float64(i+1) {
			t.Fatalf("seq %v at position %d: a gap or repeat", m["seq"], i)
		}
		texts = append(texts, m["text"].(string))
	}
	for i := range 2 {
		for j := range each {
			if !slices.Contains(texts, fmt.Sprintf("c%d-%d", i, j)) {
				t.Fatalf("acknowledged send c%d-%d missing from history", i, j)
			}
		}
	}

	// B logs out on node 0: B's sockets on nodes 1 and 2 are told and
	// disconnected.
	// The contract gives this one second on every node; the bound is
	// the contract's, far above what it takes (Redis pub/sub, a few ms).
	sb2 := connectSock(t, nodes[2], b.Token)
	if r := stack.Call(t, "POST", nodes[0].URL+"/api/auth/logout", b.Token, nil); r.Status != http.StatusNoContent {
		t.Fatalf("logout: %d %s", r.Status, r.Raw)
	}
	loggedOut := time.Now()
	for _, s := range []*sioraw.Client{sb, sb2} {
		s.Event("session:revoked")
		s.Expect("server disconnect", func(f string) bool { return f == "41" })
	}
	if d := time.Since(loggedOut); d > time.Second {
		t.Fatalf("sockets on the other nodes revoked and disconnected %v after the logout, the contract says within 1s", d)
	}
}

// A member added on node A sends through node B at once, before node B
// can have heard A's notice: node B lets them in (its cached copy of the
// chat predates them, so it asks the store), each time.
func TestAddedOnOneNodeSendsOnAnother(t *testing.T) {
	nodes, _ := stack.StartCluster(t, 2)
	owner, member := stack.Signup(t, nodes[0].URL, "ao"), stack.Signup(t, nodes[1].URL, "am")
	chatID := newGroupChat(t, nodes[0], owner, "at once", member)
	for i := range 5 {
		// Node B caches the chat as it is now.
		postMessage(t, nodes[1], member.Token, chatID, map[string]any{"text": fmt.Sprintf("before %d", i)}, http.StatusCreated)
		newcomer := stack.Signup(t, nodes[1].URL, fmt.Sprintf("an%d", i))
		if r := stack.Call(t, "POST", nodes[0].URL+"/api/chats/"+chatID+"/members", owner.Token,
			map[string]any{"userIds": []string{newcomer.ID}}); r.Status != http.StatusOK {
			t.Fatalf("add member: %d %s", r.Status, r.Raw)
		}
		postMessage(t, nodes[1], newcomer.Token, chatID, map[string]any{"text": fmt.Sprintf("hi %d", i)}, http.StatusCreated)
	}
}

// Two users on two nodes answer each other in turn, as people chat: each
// node's seq counter follows the other node's commits (the chat-seq
// notices), so a reply is numbered right the first time instead of
// clashing on (chatId, seq) and renumbering, which every reply did before.
// The count is what an operator sees on /metrics.
func TestClusterRepliesAcrossNodes(t *testing.T) {
	nodes, _ := stack.StartCluster(t, 2)
	a, b := stack.Signup(t, nodes[0].URL, "ra"), stack.Signup(t, nodes[1].URL, "rb")
	chatID := newGroupChat(t, nodes[0], a, "replies", b)
	sa, sb := connectSock(t, nodes[0], a.Token), connectSock(t, nodes[1], b.Token)
	const rounds = 10
	for i := range rounds {
		text := fmt.Sprintf("a%d", i)
		postMessage(t, nodes[0], a.Token, chatID, map[string]any{"text": text}, http.StatusCreated)
		sb.Payload("message:new", msgIn(chatID, text))
		text = fmt.Sprintf("b%d", i)
		postMessage(t, nodes[1], b.Token, chatID, map[string]any{"text": text}, http.StatusCreated)
		sa.Payload("message:new", msgIn(chatID, text))
	}
	hist := fullHistory(t, nodes[0], a.Token, chatID)
	if len(hist) != 2*rounds {
		t.Fatalf("%d messages in history, want %d", len(hist), 2*rounds)
	}
	for i, m := range hist {
		if m["seq"] != float64(i+1) {
			t.Fatalf("seq %v at position %d: a gap or repeat", m["seq"], i)
		}
	}
	// Without the notices every reply but the first clashes (2*rounds-1).
	// With them a reply clashes only if it overtakes the notice of the
	// message it answers, which a round trip to the other user's socket
	// and back makes rare; the bound leaves room for a loaded machine.
	clashes := seqClashes(t, nodes[0]) + seqClashes(t, nodes[1])
	t.Logf("%d replies across nodes, %d seq clashes", 2*rounds, clashes)
	if clashes >= rounds/2 {
		t.Fatalf("%d seq clashes in %d replies across nodes: the counters do not follow each other", clashes, 2*rounds)
	}
}

// seqClashes reads parley_chat_seq_clashes_total from the node's /metrics.
func seqClashes(t *testing.T, node *stack.Server) int {
	t.Helper()
	r := stack.Call(t, "GET", node.URL+"/metrics", "", nil)
	for line := range strings.Lines(string(r.Raw)) {
		if v, ok := strings.CutPrefix(line, "parley_chat_seq_clashes_total "); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %q: %v", line, err)
			}
			return int(n)
		}
	}
	t.Fatalf("/metrics has no parley_chat_seq_clashes_total:\n%s", r.Raw)
	return 0
}
