package chat_test

// End-to-end tests of chats and messages: the real server, real sockets
// (the raw Engine.IO client in internal/testenv/sioraw), asserting what users
// see. Absence is never checked by sleeping: a test waits for an event known
// to be sent later on the same connection (a barrier) and then looks at what
// is queued, since one connection delivers in order.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/parley-chat/parley/internal/testenv/sioraw"
	"github.com/parley-chat/parley/internal/testenv/stack"
)

// connectSock opens a websocket and connects the namespace as token.
func connectSock(t *testing.T, srv *stack.Server, token string) *sioraw.Client {
	t.Helper()
	return stack.ConnectSock(t, srv.URL, token)
}

// newGroupChat creates a group owned by owner and returns its id.
func newGroupChat(t *testing.T, srv *stack.Server, owner stack.Account, name string, members ...stack.Account) string {
	t.Helper()
	ids := make([]string, len(members))
	for i, m := range members {
		ids[i] = m.ID
	}
	r := stack.Call(t, "POST", srv.URL+"/api/chats", owner.Token, map[string]any{"type": "group", "name": name, "memberIds": ids})
	if r.Status != http.StatusCreated {
		t.Fatalf("create group: %d %s", r.Status, r.Raw)
	}
	return r.Body["id"].(string)
}

// newDirectChat returns the direct chat of a and b.
func newDirectChat(t *testing.T, srv *stack.Server, a, b stack.Account) string {
	t.Helper()
	r := stack.Call(t, "POST", srv.URL+"/api/chats", a.Token, map[string]any{"type": "direct", "userId": b.ID})
	if r.Status != http.StatusCreated && r.Status != http.StatusOK {
		t.Fatalf("create direct chat: %d %s", r.Status, r.Raw)
	}
	return r.Body["id"].(string)
}

// postMessage sends over REST and fails unless the answer is want.
func postMessage(t *testing.T, srv *stack.Server, token, chatID string, body map[string]any, want int) map[string]any {
	t.Helper()
	r := stack.Call(t, "POST", srv.URL+"/api/chats/"+chatID+"/messages", token, body)
	if r.Status != want {
		t.Fatalf("POST message %v: %d %s, want %d", body, r.Status, r.Raw, want)
	}
	return r.Body
}

// sentMessage returns the message of a successful message:send ack.
func sentMessage(t *testing.T, ack map[string]any) map[string]any {
	t.Helper()
	if ack["ok"] != true {
		t.Fatalf("message:send answered %v", ack)
	}
	m, ok := ack["message"].(map[string]any)
	if !ok {
		t.Fatalf("message:send ack without a message: %v", ack)
	}
	return m
}

// sendSock sends text (with clientMsgId when not empty) and returns the message.
func sendSock(t *testing.T, c *sioraw.Client, chatID, text, clientMsgID string) map[string]any {
	t.Helper()
	p := map[string]any{"chatId": chatID, "text": text}
	if clientMsgID != "" {
		p["clientMsgId"] = clientMsgID
	}
	return sentMessage(t, c.CallOne("message:send", p))
}

// wantAckError checks a socket ack is {ok: false, error: {code}}.
func wantAckError(t *testing.T, what string, ack map[string]any, code string) {
	t.Helper()
	e, _ := ack["error"].(map[string]any)
	if ack["ok"] != false || e == nil || e["code"] != code || e["message"] == nil {
		t.Fatalf("%s: ack %v, want error %s", what, ack, code)
	}
}

// wantRESTError checks an error answer's status and code.
func wantRESTError(t *testing.T, what string, r stack.Response, status int, code string) {
	t.Helper()
	if r.Status != status || r.ErrorCode() != code {
		t.Fatalf("%s: %d %s, want %d %s", what, r.Status, r.Raw, status, code)
	}
}

// ofChat matches events whose payload belongs to chatID.
func ofChat(chatID string) func(args []any) bool {
	return func(args []any) bool {
		m, ok := args[0].(map[string]any)
		return ok && m["chatId"] == chatID
	}
}

// msgIn matches a message:new payload of chatID with the given text.
func msgIn(chatID, text string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["chatId"] == chatID && m["text"] == text }
}

// chatIs matches a chat:new / chat:update payload by id.
func chatIs(chatID string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["id"] == chatID }
}

// fullHistory pages a chat's history newest to oldest over REST, 100 at a
// time, and returns it in ascending seq.
func fullHistory(t *testing.T, srv *stack.Server, token, chatID string) []map[string]any {
	t.Helper()
	var all []map[string]any
	url := srv.URL + "/api/chats/" + chatID + "/messages?limit=100"
	for page := 0; ; page++ {
		r := stack.Call(t, "GET", url, token, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("history: %d %s", r.Status, r.Raw)
		}
		msgs := r.Body["messages"].([]any)
		batch := make([]map[string]any, len(msgs))
		for i, m := range msgs {
			batch[i] = m.(map[string]any)
		}
		all = append(batch, all...)
		if r.Body["hasMore"] != true {
			return all
		}
		if len(batch) == 0 || page > 100 {
			t.Fatalf("history: hasMore with an empty page: %s", r.Raw)
		}
		url = fmt.Sprintf("%s/api/chats/%s/messages?limit=100&before=%d", srv.URL, chatID, int64(batch[0]["seq"].(float64)))
	}
}

func seqOf(m map[string]any) int64 { return int64(m["seq"].(float64)) }

// restPost is call for goroutines other than the test's: errors come back
// instead of failing the test.
func restPost(url, token string, body any) (int, map[string]any, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequest("POST", url, bytes.NewReader(raw))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("answer %d %q: %w", resp.StatusCode, b, err)
	}
	return resp.StatusCode, out, nil
}

// TestSeqConcurrentSenders: five users send into one group at once, four
// over sockets (pipelined, 40 each) and one over REST. Every send succeeds,
// seq is exactly 1..N in history with each sender's messages in its own
// order, and every socket gets exactly the message:new events the contract
// promises it: all but those its own socket sent.
func TestSeqConcurrentSenders(t *testing.T) {
	const perSender = 40
	stack.ForEachStore(t, func(t *testing.T, srv *stack.Server) {
		users := make([]stack.Account, 5)
		for i := range users {
			users[i] = stack.Signup(t, srv.URL, fmt.Sprintf("seq%d", i))
		}
		chatID := newGroupChat(t, srv, users[0], "busy", users[1:]...)

		// Sockets: users 0..3 send over their first socket; user 0 has a
		// second one (which must get user 0's messages), user 4 sends over
		// REST and has two sockets (which must both get its messages).
		type sock struct {
			c     *sioraw.Client
			user  int
			sends bool // the socket user's messages are sent from
		}
		var socks []sock
		for i := range users {
			socks = append(socks, sock{connectSock(t, srv, users[i].Token), i, i < 4})
			if i == 0 || i == 4 {
				socks = append(socks, sock{connectSock(t, srv, users[i].Token), i, false})
			}
		}

		// The REST sender runs alongside, sequentially so its order is known.
		type sent struct {
			id     string
			seq    int64
			sender int
			n      int
		}
		restSent := make([]sent, 0, perSender)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range perSender {
				status, m, err := restPost(srv.URL+"/api/chats/"+chatID+"/messages", users[4].Token,
					map[string]any{"text": fmt.Sprintf("u4 #%d", n), "clientMsgId": fmt.Sprintf("u4-%d", n)})
				if err != nil || status != http.StatusCreated {
					t.Errorf("REST send %d: %d %v %v", n, status, m, err)
					return
				}
				restSent = append(restSent, sent{m["id"].(string), int64(m["seq"].(float64)), 4, n})
			}
		}()
		// The socket senders' packets all go out at once, interleaved; the
		// server works on the four sockets in parallel.
		pending := make([][]*sioraw.Pending, 4)
		for n := range perSender {
			for u := range 4 {
				pending[u] = append(pending[u], socks[senderSock(u)].c.Start("message:send", map[string]any{
					"chatId": chatID, "text": fmt.Sprintf("u%d #%d", u, n), "clientMsgId": fmt.Sprintf("u%d-%d", u, n),
				}))
			}
		}
		var all []sent
		for u := range 4 {
			for n, p := range pending[u] {
				m := sentMessage(t, p.WaitOne())
				if m["text"] != fmt.Sprintf("u%d #%d", u, n) || m["senderId"] != users[u].ID {
					t.Fatalf("ack for u%d #%d carried %v", u, n, m)
				}
				all = append(all, sent{m["id"].(string), seqOf(m), u, n})
			}
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		all = append(all, restSent...)
		// The barrier: sent last, over REST, so it reaches every socket
		// after everything above.
		postMessage(t, srv, users[0].Token, chatID, map[string]any{"text": "barrier"}, http.StatusCreated)
		total := len(all) + 1

		// History: seq 1..N, no gaps or repeats, each sender in order.
		hist := fullHistory(t, srv, users[1].Token, chatID)
		if len(hist) != total {
			t.Fatalf("history holds %d messages, want %d", len(hist), total)
		}
		bySeq := map[int64]string{}
		for i, m := range hist {
			if seqOf(m) != int64(i+1) {
				t.Fatalf("history position %d has seq %d", i, seqOf(m))
			}
			bySeq[seqOf(m)] = m["id"].(string)
		}
		lastN := map[int]int{0: -1, 1: -1, 2: -1, 3: -1, 4: -1}
		for _, m := range hist[:total-1] {
			var u, n int
			if _, err := fmt.Sscanf(m["text"].(string), "u%d #%d", &u, &n); err != nil {
				t.Fatalf("unexpected message in history: %v", m)
			}
			if n != lastN[u]+1 {
				t.Fatalf("sender %d: #%d follows #%d in seq order", u, n, lastN[u])
			}
			lastN[u] = n
		}
		for _, s := range all {
			if bySeq[s.seq] != s.id {
				t.Fatalf("u%d #%d was answered as seq %d, history has %s there", s.sender, s.n, s.seq, bySeq[s.seq])
			}
		}

		// Delivery: after the barrier, each socket's queue holds exactly
		// the messages it was owed, each once.
		for _, s := range socks {
			s.c.Payload("message:new", msgIn(chatID, "barrier"))
			got := map[string]int{}
			for _, args := range s.c.Drain("message:new", ofChat(chatID)) {
				got[args[0].(map[string]any)["id"].(string)]++
			}
			want := 0
			for _, m := range all {
				own := s.sends && m.sender == s.user
				if own {
					if got[m.id] != 0 {
						t.Fatalf("user %d's sending socket got its own message #%d", s.user, m.n)
					}
					continue
				}
				want++
				if got[m.id] != 1 {
					t.Fatalf("socket of user %d (sender: %v) got u%d #%d %d times", s.user, s.sends, m.sender, m.n, got[m.id])
				}
			}
			if len(got) != want {
				t.Fatalf("socket of user %d got %d distinct messages, want %d", s.user, len(got), want)
			}
		}
	})
}

// senderSock is the index in socks of user u's sending socket: user 0 has
// two sockets, so the others shift by one.
func senderSock(u int) int {
	if u == 0 {
		return 0
	}
	return u + 1
}

// TestIdempotentSend: the same clientMsgId from the same user in the same
// chat is one message, whether retried in sequence, sent twice at once,
// across REST and socket, or after a reconnect.
func TestIdempotentSend(t *testing.T) {
	stack.ForEachStore(t, func(t *testing.T, srv *stack.Server) {
		a, b := stack.Signup(t, srv.URL, "idem_a"), stack.Signup(t, srv.URL, "idem_b")
		chatID := newDirectChat(t, srv, a, b)
		a1, a2 := connectSock(t, srv, a.Token), connectSock(t, srv, a.Token)
		bs := connectSock(t, srv, b.Token)
		same := func(what string, x, y map[string]any) {
			t.Helper()
			if x["id"] != y["id"] || x["seq"] != y["seq"] || x["text"] != y["text"] {
				t.Fatalf("%s: two messages for one clientMsgId:\n%v\n%v", what, x, y)
			}
		}

		// Sequential retries over REST: 201, then 200 with the first copy.
		first := postMessage(t, srv, a.Token, chatID, map[string]any{"text": "one", "clientMsgId": "k1"}, http.StatusCreated)
		again := postMessage(t, srv, a.Token, chatID, map[string]any{"text": "changed", "clientMsgId": "k1"}, http.StatusOK)
		same("REST retry", first, again)
		if again["text"] != "one" || again["clientMsgId"] != "k1" {
			t.Fatalf("retry answered %v", again)
		}
		// The same id over the socket names the same message.
		same("socket after REST", first, sendSock(t, a1, chatID, "three", "k1"))

		// Sequential over the socket.
		m2 := sendSock(t, a1, chatID, "two", "k2")
		same("socket retry", m2, sendSock(t, a1, chatID, "other", "k2"))

		// Two sockets of the same user at the same moment, a few times over
		// so that copies meet in the writer's batch as well as in the store.
		keys := []string{"k1", "k2", "k4", "k5"}
		for i := range 5 {
			k := fmt.Sprintf("k3-%d", i)
			keys = append(keys, k)
			p1 := a1.Start("message:send", map[string]any{"chatId": chatID, "text": "x", "clientMsgId": k})
			p2 := a2.Start("message:send", map[string]any{"chatId": chatID, "text": "y", "clientMsgId": k})
			same("two sockets at once", sentMessage(t, p1.WaitOne()), sentMessage(t, p2.WaitOne()))
		}

		// REST and a socket at the same moment.
		var (
			wg         sync.WaitGroup
			restStatus int
			restMsg    map[string]any
			restErr    error
		)
		wg.Add(1)
		go func() {
			defer wg.Done()
			restStatus, restMsg, restErr = restPost(srv.URL+"/api/chats/"+chatID+"/messages", a.Token, map[string]any{"text": "rest", "clientMsgId": "k4"})
		}()
		sockMsg := sentMessage(t, a1.CallOne("message:send", map[string]any{"chatId": chatID, "text": "sock", "clientMsgId": "k4"}))
		wg.Wait()
		if restErr != nil || (restStatus != http.StatusCreated && restStatus != http.StatusOK) {
			t.Fatalf("REST send: %d %v %v", restStatus, restMsg, restErr)
		}
		same("REST and socket at once", restMsg, sockMsg)

		// After a reconnect: the client never saw its ack, resends.
		m5 := sendSock(t, a1, chatID, "five", "k5")
		a1.Close()
		a3 := connectSock(t, srv, a.Token)
		same("after a reconnect", m5, sendSock(t, a3, chatID, "five again", "k5"))

		// Another user's k1 is another message; so is k1 in another chat.
		if other := sendSock(t, bs, chatID, "b's k1", "k1"); other["id"] == first["id"] {
			t.Fatal("B's clientMsgId k1 returned A's message")
		}
		c := stack.Signup(t, srv.URL, "idem_c")
		otherChat := newDirectChat(t, srv, a, c)
		if other := sendSock(t, a3, otherChat, "k1 elsewhere", "k1"); other["id"] == first["id"] {
			t.Fatal("k1 in another chat returned the first chat's message")
		}

		// B, the other member, got each message once.
		postMessage(t, srv, a.Token, chatID, map[string]any{"text": "end"}, http.StatusCreated)
		bs.Payload("message:new", msgIn(chatID, "end"))
		count := map[string]int{}
		for _, args := range bs.Drain("message:new", ofChat(chatID)) {
			m := args[0].(map[string]any)
			if m["senderId"] == a.ID {
				count[m["clientMsgId"].(string)]++
			}
		}
		for _, k := range keys {
			if count[k] != 1 {
				t.Fatalf("B got %d message:new for %s: %v", count[k], k, count)
			}
		}
		hist := fullHistory(t, srv, b.Token, chatID)
		if want := len(keys) + 2; len(hist) != want { // A's keys, B's k1, end
			t.Fatalf("history holds %d messages, want %d", len(hist), want)
		}
		for i, m := range hist {
			if seqOf(m) != int64(i+1) {
				t.Fatalf("history position %d has seq %d", i, seqOf(m))
			}
		}
	})
}

// TestNonMemberAndMalformed: a user outside a chat learns nothing about it,
// malformed input is invalid_input, bad ids are not_found, and none of it
// disconnects anyone.
func TestNonMemberAndMalformed(t *testing.T) {
	stack.ForEachStore(t, func(t *testing.T, srv *stack.Server) {
		a, b, x := stack.Signup(t, srv.URL, "nm_a"), stack.Signup(t, srv.URL, "nm_b"), stack.Signup(t, srv.URL, "nm_x")
		chatID := newGroupChat(t, srv, a, "members only", b)
		as, bs, xs := connectSock(t, srv, a.Token), connectSock(t, srv, b.Token), connectSock(t, srv, x.Token)
		sendSock(t, as, chatID, "secret", "")

		unknown := "0123456789abcdef01234567" // well-formed, names nothing
		ids := map[string]string{"another's chat": chatID, "unknown id": unknown, "malformed id": "not-an-id", "empty id": "", "non-hex id": strings.Repeat("z", 24)}
		for name, id := range ids {
			who := a
			s := as
			if id == chatID {
				who, s = x, xs
			}
			for ev, p := range map[string]map[string]any{
				"message:send": {"chatId": id, "text": "hi"},
				"chat:history": {"chatId": id},
				"message:read": {"chatId": id, "seq": 1},
				"typing":       {"chatId": id, "isTyping": true},
			} {
				wantAckError(t, name+" "+ev, s.CallOne(ev, p), "not_found")
			}
			if id == "" {
				continue // not a path segment
			}
			base := srv.URL + "/api/chats/" + id
			for _, req := range []struct {
				method, url string
				body        any
			}{
				{"GET", base, nil},
				{"GET", base + "/messages", nil},
				{"POST", base + "/messages", map[string]any{"text": "hi"}},
				{"POST", base + "/read", map[string]any{"seq": 1}},
				{"PATCH", base, map[string]any{"name": "mine now"}},
				{"POST", base + "/members", map[string]any{"userIds": []string{who.ID}}},
				{"DELETE", base + "/members/" + b.ID, nil},
			} {
				wantRESTError(t, name+" "+req.method+" "+req.url, stack.Call(t, req.method, req.url, who.Token, req.body), 404, "not_found")
			}
		}
		// Typing repeats past the throttle's budget are still the
		// outsider's not_found: the throttle answers for no one.
		for i := range 6 {
			wantAckError(t, fmt.Sprintf("outsider's typing repeat %d", i), xs.CallOne("typing", map[string]any{"chatId": chatID, "isTyping": true}), "not_found")
		}
		// The outsider was not let in by any of it.
		if r := stack.Call(t, "GET", srv.URL+"/api/chats/"+chatID, a.Token, nil); r.Status != 200 || len(r.Body["members"].([]any)) != 2 || *strPtr(r.Body["name"]) != "members only" {
			t.Fatalf("chat after the outsider's attempts: %d %s", r.Status, r.Raw)
		}

		// Wrong JSON types are invalid_input, whoever asks.
		for _, c := range []struct {
			event   string
			payload map[string]any
		}{
			{"message:send", map[string]any{"chatId": 5, "text": "hi"}},
			{"message:send", map[string]any{"chatId": chatID, "text": 42}},
			{"message:send", map[string]any{"chatId": chatID, "text": "hi", "attachments": "a"}},
			{"message:send", map[string]any{"chatId": chatID, "text": "hi", "attachments": []any{1}}},
			{"message:send", map[string]any{"chatId": chatID, "text": "hi", "clientMsgId": 7}},
			{"message:send", map[string]any{"chatId": chatID}},
			{"message:send", map[string]any{"chatId": chatID, "text": ""}},
			{"message:send", map[string]any{"chatId": chatID, "text": strings.Repeat("a", 4001)}},
			{"message:send", map[string]any{"chatId": chatID, "text": "hi", "clientMsgId": strings.Repeat("c", 65)}},
			{"message:send", map[string]any{"chatId": chatID, "text": "hi", "clientMsgId": ""}},
			{"message:read", map[string]any{"chatId": chatID, "seq": "x"}},
			{"message:read", map[string]any{"chatId": chatID, "seq": 1.5}},
			{"message:read", map[string]any{"chatId": chatID}},
			{"message:read", map[string]any{"chatId": []any{chatID}, "seq": 1}},
			{"chat:history", map[string]any{"chatId": chatID, "limit": "10"}},
			{"chat:history", map[string]any{"chatId": chatID, "before": 5, "after": 1}},
			{"chat:history", map[string]any{"chatId": chatID, "limit": 0}},
			{"typing", map[string]any{"chatId": chatID, "isTyping": "yes"}},
			{"presence:get", map[string]any{"userIds": b.ID}},
		} {
			wantAckError(t, fmt.Sprintf("%s %v", c.event, c.payload), as.CallOne(c.event, c.payload), "invalid_input")
		}
		// Payloads that are not objects, for every event.
		for _, ev := range []string{"message:send", "message:read", "typing", "chat:history", "presence:get"} {
			for _, p := range []any{"text", 5, []any{chatID}, nil, true} {
				wantAckError(t, fmt.Sprintf("%s %#v", ev, p), as.CallOne(ev, p), "invalid_input")
			}
		}
		// The same over REST.
		msgs := srv.URL + "/api/chats/" + chatID + "/messages"
		for _, body := range []any{
			map[string]any{"text": 42}, map[string]any{"text": "hi", "attachments": "a"},
			map[string]any{"text": strings.Repeat("a", 4001)}, map[string]any{"text": "hi", "clientMsgId": strings.Repeat("c", 65)},
			"[1,2]", `"text"`, "null", "5",
		} {
			wantRESTError(t, fmt.Sprintf("POST messages %v", body), stack.Call(t, "POST", msgs, a.Token, body), 400, "invalid_input")
		}
		wantRESTError(t, "POST read seq x", stack.Call(t, "POST", srv.URL+"/api/chats/"+chatID+"/read", a.Token, map[string]any{"seq": "x"}), 400, "invalid_input")

		// The limits' edges are accepted: 4000 code points of four bytes
		// each, and a 64-character clientMsgId.
		long := strings.Repeat("😀", 4000)
		if m := sendSock(t, as, chatID, long, strings.Repeat("c", 64)); m["text"] != long {
			t.Fatal("4000 code points came back changed")
		}
		postMessage(t, srv, a.Token, chatID, map[string]any{"text": strings.Repeat("é", 4000)}, http.StatusCreated)

		// A send without an ack callback is stored and delivered all the same.
		as.Emit(`["message:send",{"chatId":"` + chatID + `","text":"no ack"}]`)
		as.Emit(`["message:send","junk"]`)
		as.Emit(`["no:such:event",{}]`)
		bs.Payload("message:new", msgIn(chatID, "no ack"))

		// Everyone is still connected and served.
		sendSock(t, as, chatID, "still here", "")
		bs.Payload("message:new", msgIn(chatID, "still here"))
		if ack := xs.CallOne("presence:get", map[string]any{"userIds": []string{a.ID}}); ack["ok"] != true {
			t.Fatalf("the outsider's socket after all that: %v", ack)
		}
		if ack := bs.CallOne("chat:history", map[string]any{"chatId": chatID, "limit": 1}); ack["ok"] != true || len(ack["messages"].([]any)) != 1 {
			t.Fatalf("B's history: %v", ack)
		}
	})
}

func strPtr(v any) *string {
	s, _ := v.(string)
	return &s
}

// TestMembershipLive: creating a group, adding, renaming and removing reach
// live sockets, and their rooms follow: a new member's socket gets the
// chat's messages at once, a removed one's stops getting them.
func TestMembershipLive(t *testing.T) {
	stack.ForEachStore(t, func(t *testing.T, srv *stack.Server) {
		a, b, c := stack.Signup(t, srv.URL, "mem_a"), stack.Signup(t, srv.URL, "mem_b"), stack.Signup(t, srv.URL, "mem_c")
		direct := newDirectChat(t, srv, a, b) // the barrier chat, for later
		as, bs, cs := connectSock(t, srv, a.Token), connectSock(t, srv, b.Token), connectSock(t, srv, c.Token)

		group := newGroupChat(t, srv, a, "team", b)
		chatNew := bs.Payload("chat:new", chatIs(group))
		if chatNew["type"] != "group" || chatNew["name"] != "team" || len(chatNew["members"].([]any)) != 2 {
			t.Fatalf("chat:new %v", chatNew)
		}
		as.Payload("chat:new", chatIs(group))
		// B's socket, connected before the group existed, is in its room.
		sendSock(t, as, group, "welcome", "")
		bs.Payload("message:new", msgIn(group, "welcome"))

		// Adding C: C hears chat:new and then the chat's messages; B hears
		// chat:update with C in it.
		r := stack.Call(t, "POST", srv.URL+"/api/chats/"+group+"/members", a.Token, map[string]any{"userIds": []string{c.ID}})
		if r.Status != 200 || len(r.Body["members"].([]any)) != 3 {
			t.Fatalf("add C: %d %s", r.Status, r.Raw)
		}
		cs.Payload("chat:new", chatIs(group))
		if upd := bs.Payload("chat:update", chatIs(group)); len(upd["members"].([]any)) != 3 {
			t.Fatalf("B's chat:update after adding C: %v", upd)
		}
		sendSock(t, as, group, "hello C", "")
		cs.Payload("message:new", msgIn(group, "hello C"))
		bs.Payload("message:new", msgIn(group, "hello C"))

		// Renaming: every member hears the new name.
		if r := stack.Call(t, "PATCH", srv.URL+"/api/chats/"+group, a.Token, map[string]any{"name": "  renamed  "}); r.Status != 200 || r.Body["name"] != "renamed" {
			t.Fatalf("rename: %d %s", r.Status, r.Raw)
		}
		for _, s := range []*sioraw.Client{as, bs, cs} {
			s.Payload("chat:update", func(m map[string]any) bool { return m["id"] == group && m["name"] == "renamed" })
		}

		// A plain member manages nothing but itself.
		wantRESTError(t, "member renames", stack.Call(t, "PATCH", srv.URL+"/api/chats/"+group, b.Token, map[string]any{"name": "mine"}), 403, "forbidden")
		wantRESTError(t, "member adds", stack.Call(t, "POST", srv.URL+"/api/chats/"+group+"/members", b.Token, map[string]any{"userIds": []string{stack.Signup(t, srv.URL, "mem_d").ID}}), 403, "forbidden")
		wantRESTError(t, "member removes another", stack.Call(t, "DELETE", srv.URL+"/api/chats/"+group+"/members/"+c.ID, b.Token, nil), 403, "forbidden")
		wantRESTError(t, "member removes the owner", stack.Call(t, "DELETE", srv.URL+"/api/chats/"+group+"/members/"+a.ID, b.Token, nil), 403, "forbidden")
		// A direct chat has no name or members to change.
		wantRESTError(t, "rename a direct chat", stack.Call(t, "PATCH", srv.URL+"/api/chats/"+direct, a.Token, map[string]any{"name": "x"}), 400, "invalid_input")

		// Removing B: B hears chat:removed, and its socket leaves the room.
		if r := stack.Call(t, "DELETE", srv.URL+"/api/chats/"+group+"/members/"+b.ID, a.Token, nil); r.Status != 204 {
			t.Fatalf("remove B: %d %s", r.Status, r.Raw)
		}
		if rm := bs.Payload("chat:removed", func(m map[string]any) bool { return m["chatId"] == group }); len(rm) != 1 {
			t.Fatalf("chat:removed carries %v, want only chatId", rm)
		}
		if upd := cs.Payload("chat:update", func(m map[string]any) bool { return m["id"] == group && len(m["members"].([]any)) == 2 }); upd["name"] != "renamed" {
			t.Fatalf("C's chat:update after removing B: %v", upd)
		}
		sendSock(t, as, group, "after B left", "")
		cs.Payload("message:new", msgIn(group, "after B left"))
		// Barrier: a message in the direct chat, sent after the one above.
		sendSock(t, as, direct, "barrier", "")
		bs.Payload("message:new", msgIn(direct, "barrier"))
		bs.NoEvent("message:new", ofChat(group))
		wantAckError(t, "removed member's history", bs.CallOne("chat:history", map[string]any{"chatId": group}), "not_found")
		wantRESTError(t, "removed member's GET", stack.Call(t, "GET", srv.URL+"/api/chats/"+group, b.Token, nil), 404, "not_found")
		// A socket that connects now is not put back in the room either.
		bs2 := connectSock(t, srv, b.Token)
		sendSock(t, as, group, "later still", "")
		sendSock(t, as, direct, "barrier 2", "")
		bs2.Payload("message:new", msgIn(direct, "barrier 2"))
		bs2.NoEvent("message:new", ofChat(group))

		// A plain member may leave.
		if r := stack.Call(t, "DELETE", srv.URL+"/api/chats/"+group+"/members/"+c.ID, c.Token, nil); r.Status != 204 {
			t.Fatalf("C leaves: %d %s", r.Status, r.Raw)
		}
		cs.Payload("chat:removed", func(m map[string]any) bool { return m["chatId"] == group })
		if upd := as.Payload("chat:update", func(m map[string]any) bool { return m["id"] == group && len(m["members"].([]any)) == 1 }); upd == nil {
			t.Fatal("no chat:update for the owner")
		}
		wantRESTError(t, "C after leaving", stack.Call(t, "GET", srv.URL+"/api/chats/"+group+"/messages", c.Token, nil), 404, "not_found")
	})
}

// TestDirectChats: a direct chat is one per pair, and only between two
// real, different users.
func TestDirectChats(t *testing.T) {
	stack.ForEachStore(t, func(t *testing.T, srv *stack.Server) {
		a, b := stack.Signup(t, srv.URL, "dir_a"), stack.Signup(t, srv.URL, "dir_b")
		bs := connectSock(t, srv, b.Token)
		create := func(who stack.Account, userID any) stack.Response {
			return stack.Call(t, "POST", srv.URL+"/api/chats", who.Token, map[string]any{"type": "direct", "userId": userID})
		}
		first := create(a, b.ID)
		if first.Status != http.StatusCreated || first.Body["type"] != "direct" || first.Body["name"] != nil {
			t.Fatalf("first: %d %s", first.Status, first.Raw)
		}
		for _, m := range first.Body["members"].([]any) {
			if role := m.(map[string]any)["role"]; role != "member" {
				t.Fatalf("direct chat member with role %v: %s", role, first.Raw)
			}
		}
		id := first.Body["id"].(string)
		bs.Payload("chat:new", chatIs(id))
		for _, r := range []stack.Response{create(a, b.ID), create(b, a.ID)} {
			if r.Status != http.StatusOK || r.Body["id"] != id {
				t.Fatalf("again: %d %s, want 200 with %s", r.Status, r.Raw, id)
			}
		}
		wantRESTError(t, "with oneself", create(a, a.ID), 400, "invalid_input")
		wantRESTError(t, "unknown user", create(a, "0123456789abcdef01234567"), 400, "invalid_input")
		wantRESTError(t, "malformed user id", create(a, "nobody"), 400, "invalid_input")
		wantRESTError(t, "user id of the wrong type", create(a, 42), 400, "invalid_input")
		// Exactly one chat came of it.
		if r := stack.Call(t, "GET", srv.URL+"/api/chats", a.Token, nil); r.Status != 200 || len(r.Body["chats"].([]any)) != 1 {
			t.Fatalf("A's chats: %d %s", r.Status, r.Raw)
		}
	})
}

// TestReadReceiptsAndUnread: read marks move forward only, are clamped to
// the last message, relay to everyone but the reading socket, and drive
// unreadCount; the chat list is newest activity first.
func TestReadReceiptsAndUnread(t *testing.T) {
	stack.ForEachStore(t, func(t *testing.T, srv *stack.Server) {
		a, b := stack.Signup(t, srv.URL, "rd_a"), stack.Signup(t, srv.URL, "rd_b")
		chatID := newGroupChat(t, srv, a, "reads", b)
		quiet := newDirectChat(t, srv, a, b)
		as, b1, b2 := connectSock(t, srv, a.Token), connectSock(t, srv, b.Token), connectSock(t, srv, b.Token)
		for i := 1; i <= 3; i++ {
			sendSock(t, as, chatID, fmt.Sprintf("m%d", i), "")
		}
		chatOf := func(who stack.Account, id string) map[string]any {
			t.Helper()
			r := stack.Call(t, "GET", srv.URL+"/api/chats", who.Token, nil)
			if r.Status != 200 {
				t.Fatalf("chats: %d %s", r.Status, r.Raw)
			}
			for _, c := range r.Body["chats"].([]any) {
				if c := c.(map[string]any); c["id"] == id {
					return c
				}
			}
			t.Fatalf("chat %s not in %s", id, r.Raw)
			return nil
		}
		unread := func(who stack.Account) int { t.Helper(); return int(chatOf(who, chatID)["unreadCount"].(float64)) }
		c := chatOf(b, chatID)
		if c["unreadCount"] != 3.0 || c["lastMessage"].(map[string]any)["seq"] != 3.0 || c["lastMessage"].(map[string]any)["text"] != "m3" {
			t.Fatalf("B's view after three messages: %v", c)
		}
		if n := unread(a); n != 0 {
			t.Fatalf("the sender's own messages count as unread: %d", n)
		}

		// B reads up to 2 on one socket: A and B's other socket hear it,
		// the reading socket does not (its ack is the barrier).
		if ack := b1.CallOne("message:read", map[string]any{"chatId": chatID, "seq": 2}); ack["ok"] != true {
			t.Fatalf("read 2: %v", ack)
		}
		b1.NoEvent("message:read", nil)
		want := map[string]any{"chatId": chatID, "userId": b.ID, "seq": 2.0}
		for name, s := range map[string]*sioraw.Client{"A": as, "B's other socket": b2} {
			if got := s.Payload("message:read", nil); !mapsEqual(got, want) {
				t.Fatalf("%s got message:read %v, want %v", name, got, want)
			}
		}
		if n := unread(b); n != 1 {
			t.Fatalf("unreadCount after reading 2 of 3: %d", n)
		}
		// An older seq: accepted, nothing changes, nothing relayed.
		if ack := b1.CallOne("message:read", map[string]any{"chatId": chatID, "seq": 1}); ack["ok"] != true {
			t.Fatalf("read 1: %v", ack)
		}
		if n := unread(b); n != 1 {
			t.Fatalf("unreadCount after an older read mark: %d", n)
		}
		// Past the end: clamped to 3, and that is what A hears next (so
		// the older mark above was not relayed).
		if ack := b1.CallOne("message:read", map[string]any{"chatId": chatID, "seq": 99}); ack["ok"] != true {
			t.Fatalf("read 99: %v", ack)
		}
		want["seq"] = 3.0
		for name, s := range map[string]*sioraw.Client{"A": as, "B's other socket": b2} {
			if got := s.Payload("message:read", nil); !mapsEqual(got, want) {
				t.Fatalf("%s got message:read %v, want %v (clamped)", name, got, want)
			}
		}
		if n := unread(b); n != 0 {
			t.Fatalf("unreadCount after reading all: %d", n)
		}
		// REST marks the same way (and answers 204); repeating is no move.
		if r := stack.Call(t, "POST", srv.URL+"/api/chats/"+chatID+"/read", b.Token, map[string]any{"seq": 3}); r.Status != 204 {
			t.Fatalf("REST read: %d %s", r.Status, r.Raw)
		}
		// B's own message is not unread for B, and is for A.
		sendSock(t, b1, chatID, "from B", "")
		if nb, na := unread(b), unread(a); nb != 0 || na != 1 {
			t.Fatalf("after B's message: B unread %d (want 0), A unread %d (want 1)", nb, na)
		}
		// Newest activity first: the group, then the quieter direct chat;
		// one message in the direct chat puts it on top.
		order := func() []string {
			r := stack.Call(t, "GET", srv.URL+"/api/chats", b.Token, nil)
			var ids []string
			for _, c := range r.Body["chats"].([]any) {
				ids = append(ids, c.(map[string]any)["id"].(string))
			}
			return ids
		}
		if got := order(); !slices.Equal(got, []string{chatID, quiet}) {
			t.Fatalf("chat order %v, want the group first", got)
		}
		sendSock(t, as, quiet, "now me", "")
		if got := order(); !slices.Equal(got, []string{quiet, chatID}) {
			t.Fatalf("chat order %v, want the direct chat first", got)
		}
	})
}

func mapsEqual(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestTypingRelay: typing reaches the other members, not the typer's other
// sockets; repeats may be dropped, changes never.
func TestTypingRelay(t *testing.T) {
	srv := stack.Start(t, "sqlite")
	a, b := stack.Signup(t, srv.URL, "ty_a"), stack.Signup(t, srv.URL, "ty_b")
	chatID := newGroupChat(t, srv, a, "typing", b)
	a1, a2, bs := connectSock(t, srv, a.Token), connectSock(t, srv, a.Token), connectSock(t, srv, b.Token)
	typing := func(on bool) {
		t.Helper()
		// With an ack: it comes once the relay has gone out.
		if ack := a1.CallOne("typing", map[string]any{"chatId": chatID, "isTyping": on}); ack["ok"] != true {
			t.Fatalf("typing ack %v", ack)
		}
	}
	typing(true)
	if got := bs.Payload("typing", nil); !mapsEqual(got, map[string]any{"chatId": chatID, "userId": a.ID, "isTyping": true}) {
		t.Fatalf("B got typing %v", got)
	}

	// A burst of repeats without acks, then a change: the change always
	// comes through, and after it (relays keep their order) only a few of
	// the 20 repeats did. The bucket holds 3 and refills 3 a second.
	for range 20 {
		a1.Emit(`["typing",{"chatId":"` + chatID + `","isTyping":true}]`)
	}
	typing(false)
	bs.Payload("typing", func(m map[string]any) bool { return m["isTyping"] == false })
	if n := len(bs.Drain("typing", nil)); n > 6 {
		t.Fatalf("%d of 20 repeated typing events were relayed", n)
	}
	// Changes, with the bucket empty: every one arrives, in order.
	seq := []bool{true, false, true, false, true}
	for _, on := range seq {
		typing(on)
	}
	for i, on := range seq {
		if got := bs.Payload("typing", nil); got["isTyping"] != on {
			t.Fatalf("change %d: got %v, want isTyping %v", i, got, on)
		}
	}
	// A's other socket heard none of it: a message it does get, sent after
	// every relay above, is the barrier.
	sendSock(t, a1, chatID, "barrier", "")
	a2.Payload("message:new", msgIn(chatID, "barrier"))
	a2.NoEvent("typing", nil)
	a1.NoEvent("typing", nil)
}

// TestPresenceLive: presence follows a user's first and last socket.
func TestPresenceLive(t *testing.T) {
	srv := stack.Start(t, "sqlite")
	a, b := stack.Signup(t, srv.URL, "pr_a"), stack.Signup(t, srv.URL, "pr_b")
	chatID := newDirectChat(t, srv, a, b)
	as := connectSock(t, srv, a.Token)
	isB := func(m map[string]any) bool { return m["userId"] == b.ID }

	b1 := connectSock(t, srv, b.Token)
	on := as.Payload("presence", isB)
	if on["online"] != true || on["lastSeenAt"] == nil || len(on) != 3 {
		t.Fatalf("presence on connect: %v", on)
	}
	// A second socket: no event. Its first ack comes after its setup, and
	// its message after that is the barrier.
	b2 := connectSock(t, srv, b.Token)
	sendSock(t, b2, chatID, "second device", "")
	as.Payload("message:new", msgIn(chatID, "second device"))
	as.NoEvent("presence", nil)
	if ack := as.CallOne("presence:get", map[string]any{"userIds": []string{b.ID, "nobody"}}); ack["ok"] != true ||
		!mapsEqual(ack["presence"].([]any)[0].(map[string]any), map[string]any{"userId": b.ID, "online": true, "lastSeenAt": on["lastSeenAt"]}) || len(ack["presence"].([]any)) != 1 {
		t.Fatalf("presence:get while online: %v", ack)
	}

	// Closing one socket, then the last: one offline event. Closing a
	// socket that is not the last has nothing to wait for, so the check is
	// that the next presence event about B is the offline one (an extra
	// offline for the first close would come first).
	b1.Close()
	b2.Close()
	off := as.Payload("presence", isB)
	if off["online"] != false || off["lastSeenAt"] == nil {
		t.Fatalf("presence on the last disconnect: %v", off)
	}
	r := stack.Call(t, "GET", srv.URL+"/api/users/"+b.ID, a.Token, nil)
	if r.Status != 200 || r.Body["online"] != false || r.Body["lastSeenAt"] != off["lastSeenAt"] {
		t.Fatalf("GET user after the last disconnect: %d %s, want offline, lastSeenAt %v", r.Status, r.Raw, off["lastSeenAt"])
	}
	if ack := as.CallOne("presence:get", map[string]any{"userIds": []string{b.ID}}); !mapsEqual(ack["presence"].([]any)[0].(map[string]any), map[string]any{"userId": b.ID, "online": false, "lastSeenAt": off["lastSeenAt"]}) {
		t.Fatalf("presence:get after the last disconnect: %v", ack)
	}
	// Back online: the event comes again, and no second offline came
	// before it.
	connectSock(t, srv, b.Token)
	if back := as.Payload("presence", isB); back["online"] != true {
		t.Fatalf("presence after coming back: %v (an extra event?)", back)
	}
}

// TestRevocationLive: ending a session disconnects its sockets, and only
// its sockets.
func TestRevocationLive(t *testing.T) {
	srv := stack.Start(t, "sqlite")
	b := stack.Signup(t, srv.URL, "rv_b")
	login := func() (token, sid string) {
		t.Helper()
		r := stack.Call(t, "POST", srv.URL+"/api/auth/login", "", map[string]any{"login": b.Username, "password": b.Password})
		if r.Status != 200 {
			t.Fatalf("login: %d %s", r.Status, r.Raw)
		}
		token = r.Body["token"].(string)
		s := stack.Call(t, "GET", srv.URL+"/api/auth/sessions", token, nil)
		for _, e := range s.Body["sessions"].([]any) {
			if e := e.(map[string]any); e["current"] == true {
				return token, e["id"].(string)
			}
		}
		t.Fatalf("no current session in %s", s.Raw)
		return "", ""
	}
	// revoked waits for session:revoked, then the server's namespace
	// DISCONNECT ("41": the client's "io server disconnect", no retry).
	revoked := func(c *sioraw.Client, what string) {
		t.Helper()
		c.Event("session:revoked")
		if f := c.Expect(what+": DISCONNECT", func(f string) bool { return strings.HasPrefix(f, "41") }); f != "41" {
			t.Fatalf("%s: %q, want a namespace DISCONNECT", what, f)
		}
	}
	alive := func(c *sioraw.Client, what string) {
		t.Helper()
		if ack := c.CallOne("presence:get", map[string]any{"userIds": []string{b.ID}}); ack["ok"] != true {
			t.Fatalf("%s: %v", what, ack)
		}
	}

	tok1, sid1 := login()
	tok2, _ := login()
	s1, s2 := connectSock(t, srv, tok1), connectSock(t, srv, tok2)
	if r := stack.Call(t, "DELETE", srv.URL+"/api/auth/sessions/"+sid1, tok2, nil); r.Status != 204 {
		t.Fatalf("end session 1: %d %s", r.Status, r.Raw)
	}
	revoked(s1, "session 1's socket")
	alive(s2, "session 2's socket after session 1 ended")
	// The ended token opens nothing any more, on the same connection or a new one.
	if kind, body := s1.Connect(map[string]any{"token": tok1}); kind != "44" || body["message"] != "unauthorized" {
		t.Fatalf("CONNECT again with the ended token: %s %v", kind, body)
	}
	if kind, body := sioraw.Dial(t, srv.URL, "", nil).Connect(map[string]any{"token": tok1}); kind != "44" || body["message"] != "unauthorized" {
		t.Fatalf("new socket with the ended token: %s %v", kind, body)
	}

	// A password change ends every other session, sockets included.
	tok3, _ := login()
	s3, s2b := connectSock(t, srv, tok3), connectSock(t, srv, tok2)
	r := stack.Call(t, "PATCH", srv.URL+"/api/me", tok3, map[string]any{"currentPassword": b.Password, "newPassword": "a brand new password"})
	if r.Status != 200 {
		t.Fatalf("password change: %d %s", r.Status, r.Raw)
	}
	revoked(s2, "session 2's first socket after the password change")
	revoked(s2b, "session 2's second socket after the password change")
	alive(s3, "the changing session's socket")

	// Logout-all ends the caller's own too.
	s3b := connectSock(t, srv, tok3)
	if r := stack.Call(t, "POST", srv.URL+"/api/auth/logout-all", tok3, nil); r.Status != 204 {
		t.Fatalf("logout-all: %d %s", r.Status, r.Raw)
	}
	revoked(s3, "logout-all, first socket")
	revoked(s3b, "logout-all, second socket")
}
