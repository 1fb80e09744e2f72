package events

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/auth"
	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/ratelimit"
	"github.com/parley-chat/parley/internal/wire"
)

// Bind makes the fake a binder, as the engine's sockets are.
func (c *fakeConn) Bind(id auth.Identity, release func()) {
	c.mu.Lock()
	c.uid, c.sid = id.UserID, id.SessionID
	c.mu.Unlock()
	release() // the fake holds no transport whose close would give it back
}

func (c *fakeConn) wasDisconnected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.disconnected
}

func (c *fakeConn) emitted(event string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, e := range c.emits {
		if e.event == event {
			n++
		}
	}
	return n
}

// mernHarness is a harness whose accounts know tokens "tok-a" and "tok-b".
func mernHarness(t *testing.T, cfg Config, render MERNRenderer) *harness {
	t.Helper()
	h := &harness{chats: newFakeChats(), users: newFakeUsers(), out: newFakeFanout()}
	accounts := &fakeAccounts{tokens: map[string]auth.Identity{
		"tok-a": {UserID: userA, SessionID: sessA},
		"tok-b": {UserID: userB, SessionID: sessB},
	}}
	s, err := newServer(cfg, Deps{Accounts: accounts, Chats: h.chats, Users: h.users, MERN: render})
	if err != nil {
		t.Fatal(err)
	}
	s.out = h.out
	h.s = s
	t.Cleanup(s.Close)
	return h
}

// awaiting connects a socket admitted without credentials.
func (h *harness) awaiting(id string) (*fakeConn, *connState) {
	c := newFakeConn(id, "", "")
	st := h.s.newConn(c)
	st.awaitSetup()
	return c, st
}

// deliver sends one event as the engine would: admits first, then handle.
func deliver(st *connState, event string, payload any) {
	if st.admits(event) {
		st.handle(event, payload, nil)
	}
}

func TestMERNAwaitingSocket(t *testing.T) {
	h := mernHarness(t, Config{}, nil)
	h.chats.members[chat1] = []string{userA, userB}

	cases := []struct {
		name   string
		events []string // sent in order; "setup" carries the payload below
		setup  any
		bound  bool
	}{
		{"another event first", []string{EventMessageSend}, nil, false},
		{"unknown event first", []string{"hello"}, nil, false},
		{"setup without a token", []string{MERNSetup}, map[string]any{"_id": userA}, false},
		{"setup with a bad token", []string{MERNSetup}, map[string]any{"_id": userA, "token": "forged"}, false},
		{"setup with the login answer", []string{MERNSetup}, map[string]any{"_id": userA, "name": "A", "token": "tok-a"}, true},
		{"setup, then join chat", []string{MERNSetup, MERNJoinChat}, map[string]any{"token": "tok-a"}, true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, st := h.awaiting("sock" + string(rune('a'+i)))
			if got := c.Rooms(); !slices.Equal(got, []string{c.ID()}) {
				t.Fatalf("a waiting socket is in %v", got)
			}
			for _, ev := range tc.events {
				var p any = chat1
				if ev == MERNSetup {
					p = tc.setup
				}
				deliver(st, ev, p)
			}
			h.settle(t)
			if tc.bound {
				if c.wasDisconnected() || c.UserID() != userA || c.emitted(MERNConnected) != 1 {
					t.Fatalf("not bound: disconnected %v user %q connected %d", c.wasDisconnected(), c.UserID(), c.emitted(MERNConnected))
				}
				want := []string{c.ID(), mernUserRoom(userA), sessionRoom(sessA)}
				if slices.Contains(tc.events, MERNJoinChat) {
					want = append(want, mernChatRoom(chat1))
				}
				slices.Sort(want)
				if got := c.Rooms(); !slices.Equal(got, want) {
					t.Fatalf("rooms %v, want %v (never a native room)", got, want)
				}
				return
			}
			if !c.wasDisconnected() || c.emitted(MERNConnected) != 0 {
				t.Fatalf("not dropped: disconnected %v, connected %d", c.wasDisconnected(), c.emitted(MERNConnected))
			}
		})
	}
}

// signalConn tells when the server disconnects it.
type signalConn struct {
	*fakeConn
	once sync.Once
	gone chan struct{}
}

func (c *signalConn) Disconnect() {
	c.fakeConn.Disconnect()
	c.once.Do(func() { close(c.gone) })
}

func TestMERNSetupTimeout(t *testing.T) {
	h := mernHarness(t, Config{SetupTimeout: 20 * time.Millisecond}, nil)
	idle := &signalConn{fakeConn: newFakeConn("idle", "", ""), gone: make(chan struct{})}
	h.s.newConn(idle).awaitSetup()
	recv(t, idle.gone, "the socket without setup to be dropped")
}

func TestMERNSetupOnAuthenticatedSocket(t *testing.T) {
	h := mernHarness(t, Config{}, nil)
	h.chats.members[chat1] = []string{userA, userB}
	c, st := h.connect("cookie", userA, sessA)
	if !c.in(userRoom(userA)) || !c.in(chatRoom(chat1)) {
		t.Fatalf("native rooms missing: %v", c.Rooms())
	}
	deliver(st, MERNSetup, map[string]any{"_id": userA}) // the cookie spoke for it
	want := []string{c.ID(), mernUserRoom(userA), sessionRoom(sessA)}
	slices.Sort(want)
	if got := c.Rooms(); !slices.Equal(got, want) || c.emitted(MERNConnected) != 1 {
		t.Fatalf("after setup: rooms %v connected %d, want %v", got, c.emitted(MERNConnected), want)
	}

	other, st2 := h.connect("other", userA, sessA)
	deliver(st2, MERNSetup, map[string]any{"token": "tok-b"}) // another user's token
	if !other.wasDisconnected() {
		t.Fatal("setup naming another user was accepted")
	}
}

// fakeRenderer renders a message as its id and names chat1's members.
type fakeRenderer struct{ members []string }

func (f fakeRenderer) Delivery(_ context.Context, m wire.Message) (any, []string, error) {
	return map[string]any{"_id": m.ID}, f.members, nil
}

func TestMERNDeliveries(t *testing.T) {
	h := mernHarness(t, Config{}, fakeRenderer{members: []string{userA, userB, userC}})
	next := func() emitted { return recv(t, h.out.events, "an emit") }
	noEmit := func(what string) {
		t.Helper()
		for _, l := range h.s.mern.lanes {
			done := make(chan struct{})
			l.push(func() { close(done) })
			<-done
		}
		select {
		case e := <-h.out.events:
			t.Fatalf("%s: %+v", what, e)
		default:
		}
	}

	// No socket on this node speaks the MERN dialect: nothing is rendered.
	h.s.ToChat(chat1, chat.EventMessageNew, wire.Message{ID: "m0", ChatID: chat1, SenderID: userA}, "sockA")
	if e := next(); e.event != chat.EventMessageNew {
		t.Fatalf("native delivery %+v", e)
	}
	noEmit("a MERN delivery with no MERN socket on the node")

	_, app := h.awaiting("sockApp")
	deliver(app, MERNSetup, map[string]any{"token": "tok-b"})
	if e := next(); e.event != "presence" { // B's first socket: B is online
		t.Fatalf("after setup: %+v", e)
	}
	h.s.ToChat(chat1, chat.EventMessageNew, wire.Message{ID: "m1", ChatID: chat1, SenderID: userA}, "sockA")
	if e := next(); e.event != chat.EventMessageNew || !slices.Equal(e.to, []string{chatRoom(chat1)}) {
		t.Fatalf("native delivery %+v", e)
	}
	e := next()
	if e.event != MERNMessageReceived || !slices.Equal(e.to, []string{mernUserRoom(userB), mernUserRoom(userC)}) || len(e.except) != 0 {
		t.Fatalf("MERN delivery %+v: want every member's MERN sockets but the sender's", e)
	}
	if p, _ := e.payload.(map[string]any); p["_id"] != "m1" {
		t.Fatalf("MERN payload %v", e.payload)
	}

	for _, isTyping := range []bool{true, false} {
		h.s.ToUsers([]string{userB}, chat.EventTyping, wire.Typing{ChatID: chat1, UserID: userA, IsTyping: isTyping})
		if e := next(); e.event != chat.EventTyping {
			t.Fatalf("native typing %+v", e)
		}
		want := MERNStopTyping
		if isTyping {
			want = MERNTyping
		}
		e := next()
		if e.event != want || e.payload != nil || !slices.Equal(e.to, []string{mernChatRoom(chat1)}) || !slices.Equal(e.except, []string{mernUserRoom(userA)}) {
			t.Fatalf("MERN typing %+v, want %s without payload to the chat's MERN room but the typer's", e, want)
		}
	}

	// Other events stay native.
	h.s.ToChat(chat1, chat.EventMessageRead, map[string]any{}, "")
	if e := next(); e.event != chat.EventMessageRead {
		t.Fatalf("%+v", e)
	}
	select {
	case e := <-h.out.events:
		t.Fatalf("a MERN emit for message:read: %+v", e)
	default:
	}

	// The MERN socket goes: the node has none again, and renders nothing.
	app.teardown()
	h.settle(t)
	if e := next(); e.event != "presence" { // B's last socket: B is offline
		t.Fatalf("after teardown: %+v", e)
	}
	h.s.ToChat(chat1, chat.EventMessageNew, wire.Message{ID: "m2", ChatID: chat1, SenderID: userA}, "sockA")
	if e := next(); e.event != chat.EventMessageNew {
		t.Fatalf("native delivery %+v", e)
	}
	noEmit("a MERN delivery after the node's last MERN socket went")
}

// A socket whose token the MERN API issued (the app reconnecting with its
// cookie, without a new setup) is the app's from the start.
func TestMERNAppSessionConnects(t *testing.T) {
	h := mernHarness(t, Config{}, nil)
	h.chats.members[chat1] = []string{userA, userB}
	c := newFakeConn("app", userA, sessA)
	st := h.s.newConn(c)
	st.connectMERN()
	want := []string{c.ID(), mernUserRoom(userA), sessionRoom(sessA)}
	slices.Sort(want)
	if got := c.Rooms(); !slices.Equal(got, want) {
		t.Fatalf("rooms %v, want %v", got, want)
	}
	if !h.s.Online(userA) {
		t.Fatal("the app's socket does not count for presence")
	}
	deliver(st, MERNJoinChat, chat1)
	h.settle(t)
	if !c.in(mernChatRoom(chat1)) {
		t.Fatal("join chat refused on an app session's socket")
	}
}

// The MERN app's typing and stop typing count against the socket's typing
// budget, as native typing changes do.
func TestMERNTypingLimited(t *testing.T) {
	h := mernHarness(t, Config{Limits: Limits{Typing: ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 2}}}, nil)
	h.chats.members[chat1] = []string{userA, userB}
	_, st := h.awaiting("sockApp")
	deliver(st, MERNSetup, map[string]any{"token": "tok-a"})
	for _, event := range []string{MERNTyping, MERNStopTyping, MERNTyping, MERNStopTyping} {
		deliver(st, event, chat1)
	}
	h.settle(t)
	if _, typings, _, _ := h.chats.calls(); typings != 2 {
		t.Fatalf("%d typing changes relayed, want the budget's 2", typings)
	}
}
