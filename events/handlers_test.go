package events

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apperr"
	"github.com/parley-chat/parley/store"
)

func TestMalformedPayloadsAnswerInvalidInput(t *testing.T) {
	h := newHarness(t)
	_, st := h.connect("sock1", userA, sessA)

	nonObjects := map[string]any{"missing": nil, "string": "hello", "number": 42.0, "array": []any{chat1}, "bool": true}
	type tc struct {
		event   string
		payload any
		field   string // the field named in error.fields; "" for a non-object
	}
	var cases []tc
	for _, ev := range clientEvents {
		for _, p := range nonObjects {
			cases = append(cases, tc{ev, p, ""})
		}
	}
	cases = append(cases,
		tc{EventMessageSend, map[string]any{}, "chatId"},
		tc{EventMessageSend, map[string]any{"chatId": 5.0, "text": "x"}, "chatId"},
		tc{EventMessageSend, map[string]any{"chatId": chat1, "text": 5.0}, "text"},
		tc{EventMessageSend, map[string]any{"chatId": chat1, "text": "x", "attachments": "f1"}, "attachments"},
		tc{EventMessageSend, map[string]any{"chatId": chat1, "attachments": []any{"f1", 2.0}}, "attachments"},
		tc{EventMessageSend, map[string]any{"chatId": chat1, "text": "x", "clientMsgId": true}, "clientMsgId"},
		tc{EventMessageSend, map[string]any{"chatId": []any{chat1}, "text": "x"}, "chatId"},
		tc{EventMessageRead, map[string]any{"chatId": chat1}, "seq"},
		tc{EventMessageRead, map[string]any{"chatId": chat1, "seq": "3"}, "seq"},
		tc{EventMessageRead, map[string]any{"chatId": chat1, "seq": 1.5}, "seq"},
		tc{EventMessageRead, map[string]any{"chatId": chat1, "seq": 1e300}, "seq"},
		tc{EventMessageRead, map[string]any{"chatId": nil, "seq": 1.0}, "chatId"},
		tc{EventTyping, map[string]any{"chatId": chat1}, "isTyping"},
		tc{EventTyping, map[string]any{"chatId": chat1, "isTyping": "yes"}, "isTyping"},
		tc{EventTyping, map[string]any{"chatId": 1.0, "isTyping": true}, "chatId"},
		tc{EventChatHistory, map[string]any{"chatId": chat1, "before": "9"}, "before"},
		tc{EventChatHistory, map[string]any{"chatId": chat1, "after": 2.5}, "after"},
		tc{EventChatHistory, map[string]any{"chatId": chat1, "limit": true}, "limit"},
		tc{EventChatHistory, map[string]any{"limit": 5.0}, "chatId"},
		tc{EventPresenceGet, map[string]any{}, "userIds"},
		tc{EventPresenceGet, map[string]any{"userIds": userA}, "userIds"},
		tc{EventPresenceGet, map[string]any{"userIds": []any{userA, 7.0}}, "userIds"},
		tc{EventPresenceGet, map[string]any{"userIds": slices.Repeat([]any{userA}, maxPresenceIDs+1)}, "userIds"},
	)
	for _, c := range cases {
		name := fmt.Sprint(c.payload)
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(c.event+"/"+name, func(t *testing.T) {
			ack, got := ackChan()
			st.handle(c.event, c.payload, ack)
			body := asJSON(t, recv(t, got, "ack"))
			if code := errCode(t, body); code != string(apperr.InvalidInput) {
				t.Fatalf("code %q, want invalid_input: %v", code, body)
			}
			if c.field != "" {
				fields, _ := body["error"].(map[string]any)["fields"].(map[string]any)
				if _, ok := fields[c.field]; !ok {
					t.Fatalf("fields %v do not name %q", fields, c.field)
				}
			}
		})
	}
	h.settle(t)
	if s, ty, r, hi := h.chats.calls(); s+ty+r+hi != 0 {
		t.Fatalf("the chat service was called for malformed payloads: sends %d typing %d reads %d history %d", s, ty, r, hi)
	}
	if st.conn.(*fakeConn).disconnected {
		t.Fatal("a malformed payload disconnected the sender")
	}
}

func TestMissingAckStillActsAndNeverPanics(t *testing.T) {
	h := newHarness(t)
	_, st := h.connect("sock1", userA, sessA)
	// Malformed, without an ack: dropped quietly.
	st.handle(EventMessageSend, "nonsense", nil)
	st.handle(EventTyping, []any{1.0}, nil)
	// Unknown events are ignored.
	st.handle("no:such:event", map[string]any{"chatId": chat1}, nil)
	// Well-formed, without an ack: done all the same.
	st.handle(EventMessageSend, map[string]any{"chatId": chat1, "text": "hi"}, nil)
	st.handle(EventTyping, map[string]any{"chatId": chat1, "isTyping": true}, nil)
	st.handle(EventMessageRead, map[string]any{"chatId": chat1, "seq": 1.0}, nil)
	h.settle(t)
	sends, typings, reads, _ := h.chats.calls()
	if sends != 1 || typings != 1 || reads != 1 {
		t.Fatalf("sends %d typings %d reads %d, want 1 each", sends, typings, reads)
	}
}

func TestSendAcksTheStoredMessage(t *testing.T) {
	h := newHarness(t)
	_, st := h.connect("sock1", userA, sessA)
	ack, got := ackChan()
	st.handle(EventMessageSend, map[string]any{"chatId": chat1, "text": "hello", "clientMsgId": "c-1", "attachments": nil}, ack)
	body := asJSON(t, recv(t, got, "send ack"))
	if body["ok"] != true {
		t.Fatalf("ack %v", body)
	}
	msg := body["message"].(map[string]any)
	if msg["text"] != "hello" || msg["clientMsgId"] != "c-1" || msg["chatId"] != chat1 || msg["senderId"] != userA {
		t.Fatalf("message %v", msg)
	}
	for _, k := range []string{"id", "seq", "attachments", "createdAt"} {
		if _, ok := msg[k]; !ok {
			t.Fatalf("message lacks %q: %v", k, msg)
		}
	}
	h.chats.mu.Lock()
	call := h.chats.sends[0]
	h.chats.mu.Unlock()
	if call.origin != "sock1" || call.user != userA {
		t.Fatalf("Send got user %q origin %q", call.user, call.origin)
	}
}

func TestServiceErrorsReachTheAck(t *testing.T) {
	h := newHarness(t)
	_, st := h.connect("sock1", userA, sessA)
	for _, c := range []struct {
		event   string
		payload map[string]any
	}{
		{EventMessageSend, map[string]any{"chatId": chat2, "text": "x"}}, // not a member
		{EventMessageSend, map[string]any{"chatId": "", "text": "x"}},
		{EventMessageRead, map[string]any{"chatId": "nope", "seq": 1.0}},
		{EventChatHistory, map[string]any{"chatId": chat2}},
		{EventTyping, map[string]any{"chatId": chat2, "isTyping": true}},
	} {
		ack, got := ackChan()
		st.handle(c.event, c.payload, ack)
		if code := errCode(t, asJSON(t, recv(t, got, c.event))); code != string(apperr.NotFound) {
			t.Fatalf("%s %v: code %q, want not_found", c.event, c.payload, code)
		}
	}
}

func TestHistoryAndPresenceGet(t *testing.T) {
	h := newHarness(t)
	_, st := h.connect("sock1", userA, sessA)
	ack, got := ackChan()
	st.handle(EventChatHistory, map[string]any{"chatId": chat1, "after": 0.0, "limit": 1e12}, ack)
	body := asJSON(t, recv(t, got, "history ack"))
	if body["ok"] != true || body["hasMore"] != true || len(body["messages"].([]any)) != 1 {
		t.Fatalf("history ack %v", body)
	}
	h.chats.mu.Lock()
	q := h.chats.history[0]
	h.chats.mu.Unlock()
	if q.Before != nil || q.After == nil || *q.After != 0 || q.Limit == nil || *q.Limit <= 0 {
		t.Fatalf("query %+v", q)
	}

	ack, got = ackChan()
	// userC exists but shares no chat with userA: left out like an unknown
	// id; so is the caller, who shares no chat with itself.
	st.handle(EventPresenceGet, map[string]any{"userIds": []any{userB, userC, userA, "not-an-id", "64b0000000000000000000ff", userB}}, ack)
	body = asJSON(t, recv(t, got, "presence ack"))
	list := body["presence"].([]any)
	if len(list) != 1 {
		t.Fatalf("presence %v: want the peer only, once", list)
	}
	first := list[0].(map[string]any)
	if first["userId"] != userB || first["online"] != false {
		t.Fatalf("presence %v", list)
	}
	if _, ok := first["lastSeenAt"]; !ok {
		t.Fatalf("lastSeenAt missing: %v", first)
	}
}

func TestTypingNeverDropsAChange(t *testing.T) {
	h := newHarness(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	_, st := h.connect("sock1", userA, sessA)
	st.typingThrottle().now = func() time.Time { return now } // a frozen clock: no refill

	var want []bool
	send := func(v bool) {
		st.handle(EventTyping, map[string]any{"chatId": chat1, "isTyping": v}, nil)
	}
	// A burst of repeats: only the bucket's worth pass.
	for range 10 {
		send(true)
	}
	want = append(want, true, true, true)
	// Every change passes though the bucket is empty, repeats do not.
	for i := range 20 {
		v := i%2 == 0
		send(!v)
		send(!v)
		want = append(want, !v)
	}
	h.settle(t)
	h.chats.mu.Lock()
	var got []bool
	for _, c := range h.chats.typings {
		got = append(got, c.isTyping)
		if c.origin != "sock1" || c.chat != chat1 {
			t.Errorf("typing call %+v", c)
		}
	}
	h.chats.mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("relayed %v\nwant    %v", got, want)
	}
}

func TestThrottledTypingStillAnswersNotFound(t *testing.T) {
	h := newHarness(t)
	_, st := h.connect("sock1", userA, sessA)
	st.typingThrottle().now = func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) } // no refill
	// Past the bucket's worth of repeats, an outsider's typing in chat2 is
	// still not_found, and a member's repeat in chat1 still ok.
	for i := range 2 * typingBurst {
		for chatID, want := range map[string]string{chat2: string(apperr.NotFound), chat1: ""} {
			ack, got := ackChan()
			st.handle(EventTyping, map[string]any{"chatId": chatID, "isTyping": true}, ack)
			body := asJSON(t, recv(t, got, "typing ack"))
			if want == "" && body["ok"] != true {
				t.Fatalf("member's repeat %d in %s: %v", i, chatID, body)
			}
			if want != "" && errCode(t, body) != want {
				t.Fatalf("outsider's repeat %d in %s: %v", i, chatID, body)
			}
		}
	}
	h.settle(t)
	if _, typings, _, _ := h.chats.calls(); typings != typingBurst {
		t.Fatalf("%d typing relays, want the bucket's %d", typings, typingBurst)
	}
}

func TestLanesKeepSendOrderAndDoNotBlockOtherKinds(t *testing.T) {
	h := newHarness(t)
	gate := make(chan struct{})
	h.chats.sendGate = gate
	_, st := h.connect("sock1", userA, sessA)
	acks := make(chan string, 10)
	for i := range 5 {
		st.handle(EventMessageSend, map[string]any{"chatId": chat1, "text": fmt.Sprint(i)}, func(v any) {
			acks <- asJSON(t, v)["message"].(map[string]any)["text"].(string)
		})
	}
	// The sends are held; typing goes through meanwhile.
	st.handle(EventTyping, map[string]any{"chatId": chat1, "isTyping": true}, nil)
	recv(t, h.chats.typed, "typing relayed while sends wait")
	for range 5 {
		gate <- struct{}{}
	}
	for i := range 5 {
		if got := recv(t, acks, "send ack"); got != fmt.Sprint(i) {
			t.Fatalf("ack %d carried %q: sends out of order", i, got)
		}
	}
}

func TestPanicInAHandlerAnswersInternal(t *testing.T) {
	h := newHarness(t)
	_, st := h.connect("sock1", userA, sessA)
	h.s.users = panicUsers{}
	ack, got := ackChan()
	st.handle(EventPresenceGet, map[string]any{"userIds": []any{userB}}, ack)
	if code := errCode(t, asJSON(t, recv(t, got, "ack"))); code != string(apperr.Internal) {
		t.Fatalf("code %q, want internal", code)
	}
	// The socket still works.
	ack, got = ackChan()
	st.handle(EventMessageRead, map[string]any{"chatId": chat1, "seq": 1.0}, ack)
	if body := asJSON(t, recv(t, got, "ack")); body["ok"] != true {
		t.Fatalf("ack %v", body)
	}
}

type panicUsers struct{ Users }

func (panicUsers) UsersByIDs(context.Context, []string) ([]store.User, error) { panic("boom") }

func TestEnterRoomsJoinsAndRefreshesStaleOnes(t *testing.T) {
	h := newHarness(t)
	c := newFakeConn("sock1", userA, sessA)
	// As if recovered: back with a chat it has since left, and with the
	// rooms of whoever was signed in on this client before.
	c.Join(chatRoom(chat2), userRoom(userC), sessionRoom(sessB))
	if _, err := h.s.enterRooms(c); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{userRoom(userA), sessionRoom(sessA), chatRoom(chat1), c.ID()} {
		if !c.in(r) {
			t.Errorf("not in %s: %v", r, c.Rooms())
		}
	}
	for _, r := range []string{chatRoom(chat2), userRoom(userC), sessionRoom(sessB)} {
		if c.in(r) {
			t.Errorf("still in stale room %s: %v", r, c.Rooms())
		}
	}
}

func TestMembershipChangeDuringHandshakeIsNotLost(t *testing.T) {
	h := newHarness(t)
	c := newFakeConn("sock1", userA, sessA)
	gen, err := h.s.enterRooms(c)
	if err != nil {
		t.Fatal(err)
	}
	// Before the socket is connected (invisible to room operations), it
	// is added to chat2 and removed from chat1.
	h.chats.mu.Lock()
	h.chats.members[chat2] = append(h.chats.members[chat2], userA)
	h.chats.members[chat1] = []string{userB}
	h.chats.mu.Unlock()
	h.s.JoinChat([]string{userA}, chat2)
	h.s.LeaveChat([]string{userA}, chat1)
	st := h.s.newConn(c)
	st.setup(gen)
	if !c.in(chatRoom(chat2)) || c.in(chatRoom(chat1)) {
		t.Fatalf("rooms after connect %v: want chat2 and not chat1", c.Rooms())
	}
}

func TestRoomLookupFailureDropsTheConnection(t *testing.T) {
	h := newHarness(t)
	h.chats.chatErr = errors.New("database down")
	c, st := h.connect("sock1", userA, sessA)
	if st != nil || !c.dropped || c.disconnected {
		t.Fatalf("dropped %v disconnected %v: want a drop the client recovers from", c.dropped, c.disconnected)
	}
	if h.s.Online(userA) {
		t.Fatal("a dropped socket counts as online")
	}
}

func TestBroadcasterRooms(t *testing.T) {
	h := newHarness(t)
	h.s.ToChat(chat1, "message:new", "m", "sock9")
	h.s.ToChat(chat1, "message:new", "m", "")
	h.s.ToUsers([]string{userA, userB}, "chat:new", "c")
	h.s.ToUsers(nil, "chat:new", "c")
	h.s.JoinChat([]string{userA}, chat2)
	h.s.LeaveChat([]string{userB}, chat1)
	h.out.mu.Lock()
	defer h.out.mu.Unlock()
	want := []string{
		"[chat:" + chat1 + "] except [sock9] message:new",
		"[chat:" + chat1 + "] except [] message:new",
		"[user:" + userA + " user:" + userB + "] except [] chat:new",
	}
	var got []string
	for _, e := range h.out.emits {
		got = append(got, fmt.Sprintf("%v except %v %s", e.to, e.except, e.event))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("emits\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if fmt.Sprint(h.out.joins) != "[[user:"+userA+" chat:"+chat2+"]]" || fmt.Sprint(h.out.leaves) != "[[user:"+userB+" chat:"+chat1+"] [mern:user:"+userB+" mern:chat:"+chat1+"]]" {
		t.Fatalf("joins %v leaves %v", h.out.joins, h.out.leaves)
	}
}
