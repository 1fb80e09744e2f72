package events

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/auth"
	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/apperr"
	"github.com/parley-chat/parley/internal/wire"
	"github.com/parley-chat/parley/session"
	"github.com/parley-chat/parley/store"
)

// waitFor is how long a test waits on a channel before failing.
const waitFor = 5 * time.Second

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitFor):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// asJSON renders v as the client would decode it.
func asJSON(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %T: %v", v, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("ack %s is not an object: %v", b, err)
	}
	return m
}

func errCode(t *testing.T, ack map[string]any) string {
	t.Helper()
	if ack["ok"] != false {
		t.Fatalf("want ok:false, got %v", ack)
	}
	e, _ := ack["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// ackChan returns an Ack that delivers to a channel.
func ackChan() (Ack, chan any) {
	ch := make(chan any, 1)
	return func(v any) { ch <- v }, ch
}

// Well-formed ids.
var (
	userA  = "64b000000000000000000001"
	userB  = "64b000000000000000000002"
	userC  = "64b000000000000000000003"
	chat1  = "64c000000000000000000001"
	chat2  = "64c000000000000000000002"
	sessA  = "64d000000000000000000001"
	sessA2 = "64d000000000000000000002"
	sessB  = "64d000000000000000000003"
)

type fakeAccounts struct {
	mu     sync.Mutex
	tokens map[string]auth.Identity
}

func (f *fakeAccounts) Authenticate(_ context.Context, token string) (auth.Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, ok := f.tokens[token]
	if !ok {
		return auth.Identity{}, auth.ErrUnauthenticated
	}
	return id, nil
}

// forget makes a token fail, as an ended session's does.
func (f *fakeAccounts) forget(token string) {
	f.mu.Lock()
	delete(f.tokens, token)
	f.mu.Unlock()
}

type typingCall struct {
	user, origin, chat string
	isTyping           bool
}

type sendCall struct {
	user, origin string
	in           chat.SendInput
}

// fakeChats knows chats as member lists and records what it is asked.
type fakeChats struct {
	mu      sync.Mutex
	members map[string][]string // chat id -> user ids
	sends   []sendCall
	typings []typingCall
	reads   int
	// lookups counts reads of a user's chats (Membership and Peers).
	lookups int
	history []chat.HistoryQuery
	seq     int64
	// sendGate, when set, holds every Send until it is closed or fed.
	sendGate chan struct{}
	typed    chan typingCall
	chatErr  error
	bc       chat.Broadcaster
}

func newFakeChats() *fakeChats {
	return &fakeChats{members: map[string][]string{
		chat1: {userA, userB},
		chat2: {userB, userC},
	}, typed: make(chan typingCall, 1000)}
}

func (f *fakeChats) member(userID, chatID string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.members[chatID], userID)
}

var errNoChat = apperr.New(apperr.NotFound, "no such chat")

func (f *fakeChats) Send(ctx context.Context, userID, origin string, in chat.SendInput) (chat.Sent, error) {
	if f.sendGate != nil {
		select {
		case <-f.sendGate:
		case <-ctx.Done():
			return chat.Sent{}, ctx.Err()
		}
	}
	if !f.member(userID, in.ChatID) {
		return chat.Sent{}, errNoChat
	}
	f.mu.Lock()
	f.sends = append(f.sends, sendCall{userID, origin, in})
	f.seq++
	m := &store.Message{
		ID: store.NewID(), ChatID: in.ChatID, Seq: f.seq, SenderID: userID,
		Attachments: []store.Attachment{}, CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	if in.Text != nil {
		m.Text = *in.Text
	}
	if in.ClientMsgID != nil {
		m.ClientMsgID = *in.ClientMsgID
	}
	bc := f.bc
	f.mu.Unlock()
	if bc != nil {
		bc.ToChat(in.ChatID, chat.EventMessageNew, m.Text, origin)
	}
	return chat.Sent{Message: m, Rendered: wire.NewMessage(m), Created: true}, nil
}

func (f *fakeChats) History(_ context.Context, userID, chatID string, q chat.HistoryQuery) ([]store.Message, bool, error) {
	if !f.member(userID, chatID) {
		return nil, false, errNoChat
	}
	f.mu.Lock()
	f.history = append(f.history, q)
	f.mu.Unlock()
	return []store.Message{{ID: store.NewID(), ChatID: chatID, Seq: 1, SenderID: userB, Text: "hi"}}, true, nil
}

func (f *fakeChats) MarkRead(_ context.Context, userID, _, chatID string, _ int64) error {
	if !f.member(userID, chatID) {
		return errNoChat
	}
	f.mu.Lock()
	f.reads++
	f.mu.Unlock()
	return nil
}

func (f *fakeChats) Typing(_ context.Context, userID, origin, chatID string, isTyping bool) error {
	if !f.member(userID, chatID) {
		return errNoChat
	}
	c := typingCall{userID, origin, chatID, isTyping}
	f.mu.Lock()
	f.typings = append(f.typings, c)
	var others []string
	for _, m := range f.members[chatID] {
		if m != userID {
			others = append(others, m)
		}
	}
	bc := f.bc
	f.mu.Unlock()
	f.typed <- c
	if bc != nil {
		bc.ToUsers(others, chat.EventTyping, map[string]any{"chatId": chatID, "userId": userID, "isTyping": isTyping})
	}
	return nil
}

func (f *fakeChats) Member(_ context.Context, userID, chatID string) error {
	if !f.member(userID, chatID) {
		return errNoChat
	}
	return nil
}

func (f *fakeChats) Membership(_ context.Context, userID string) (chat.Membership, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups++
	if f.chatErr != nil {
		return chat.Membership{}, f.chatErr
	}
	var out []string
	for id, ms := range f.members {
		if slices.Contains(ms, userID) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return chat.Membership{ChatIDs: out, Peers: f.peersLocked(userID)}, nil
}

func (f *fakeChats) Peers(_ context.Context, userID string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups++
	return f.peersLocked(userID), nil
}

func (f *fakeChats) peersLocked(userID string) []string {
	var out []string
	for _, ms := range f.members {
		if !slices.Contains(ms, userID) {
			continue
		}
		for _, m := range ms {
			if m != userID && !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
	}
	slices.Sort(out)
	return out
}

func (f *fakeChats) calls() (sends, typings, reads, history int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sends), len(f.typings), f.reads, len(f.history)
}

type lastSeen struct {
	user string
	at   time.Time
}

type fakeUsers struct {
	mu    sync.Mutex
	users map[string]store.User
	seen  chan lastSeen
}

func newFakeUsers() *fakeUsers {
	u := &fakeUsers{users: map[string]store.User{}, seen: make(chan lastSeen, 100)}
	for _, id := range []string{userA, userB, userC} {
		u.users[id] = store.User{ID: id, Username: "u" + id[len(id)-1:]}
	}
	return u
}

func (f *fakeUsers) UsersByIDs(_ context.Context, ids []string) ([]store.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.User
	for _, id := range ids {
		if u, ok := f.users[id]; ok {
			out = append(out, u)
		}
	}
	return out, nil
}

func (f *fakeUsers) SetLastSeen(_ context.Context, id string, at time.Time) error {
	f.mu.Lock()
	u := f.users[id]
	u.LastSeenAt = at
	f.users[id] = u
	f.mu.Unlock()
	f.seen <- lastSeen{id, at}
	return nil
}

// fakeSessions hands the OnEnd listener to the test.
type fakeSessions struct {
	mu sync.Mutex
	fn session.EndFunc
}

func (f *fakeSessions) OnEnd(fn session.EndFunc) {
	f.mu.Lock()
	f.fn = fn
	f.mu.Unlock()
}

func (f *fakeSessions) end(userID string, sids ...string) {
	f.mu.Lock()
	fn := f.fn
	f.mu.Unlock()
	fn(userID, sids)
}

type emitted struct {
	to, except []string
	event      string
	payload    any
}

// fakeFanout records what the server sends to rooms.
type fakeFanout struct {
	mu     sync.Mutex
	emits  []emitted
	joins  [][]string
	leaves [][]string
	drops  []string
	events chan emitted
}

func newFakeFanout() *fakeFanout { return &fakeFanout{events: make(chan emitted, 100)} }

func (f *fakeFanout) emit(to, except []string, event string, payload any) {
	e := emitted{to, except, event, payload}
	f.mu.Lock()
	f.emits = append(f.emits, e)
	f.mu.Unlock()
	f.events <- e
}

func (f *fakeFanout) join(in []string, rooms ...string) {
	f.mu.Lock()
	f.joins = append(f.joins, append(append([]string{}, in...), rooms...))
	f.mu.Unlock()
}

func (f *fakeFanout) leave(in []string, rooms ...string) {
	f.mu.Lock()
	f.leaves = append(f.leaves, append(append([]string{}, in...), rooms...))
	f.mu.Unlock()
}

func (f *fakeFanout) disconnect(in ...string) {
	f.mu.Lock()
	f.drops = append(f.drops, in...)
	f.mu.Unlock()
}

// fakeConn is a socket without a network.
type fakeConn struct {
	id, uid, sid string

	mu           sync.Mutex
	rooms        map[string]bool
	emits        []emitted
	disconnected bool
	dropped      bool
}

func newFakeConn(id, uid, sid string) *fakeConn {
	return &fakeConn{id: id, uid: uid, sid: sid, rooms: map[string]bool{id: true}}
}

func (c *fakeConn) ID() string        { return c.id }
func (c *fakeConn) UserID() string    { return c.uid }
func (c *fakeConn) SessionID() string { return c.sid }

func (c *fakeConn) Emit(event string, payload any) {
	c.mu.Lock()
	c.emits = append(c.emits, emitted{event: event, payload: payload})
	c.mu.Unlock()
}

func (c *fakeConn) Join(rooms ...string) {
	c.mu.Lock()
	for _, r := range rooms {
		c.rooms[r] = true
	}
	c.mu.Unlock()
}

func (c *fakeConn) Leave(room string) {
	c.mu.Lock()
	delete(c.rooms, room)
	c.mu.Unlock()
}

func (c *fakeConn) Rooms() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for r := range c.rooms {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

func (c *fakeConn) Disconnect() {
	c.mu.Lock()
	c.disconnected = true
	c.mu.Unlock()
}

func (c *fakeConn) Drop() {
	c.mu.Lock()
	c.dropped = true
	c.mu.Unlock()
}

func (c *fakeConn) in(room string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rooms[room]
}

// harness is a Server without the library, over a fake fanout.
type harness struct {
	s     *Server
	chats *fakeChats
	users *fakeUsers
	out   *fakeFanout
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	h := &harness{chats: newFakeChats(), users: newFakeUsers(), out: newFakeFanout()}
	s, err := newServer(Config{}, Deps{Accounts: &fakeAccounts{}, Chats: h.chats, Users: h.users})
	if err != nil {
		t.Fatal(err)
	}
	s.out = h.out
	h.s = s
	t.Cleanup(s.Close)
	return h
}

// connect sets up a fake socket as the engine would: rooms during the
// handshake, then the connection.
func (h *harness) connect(id, uid, sid string) (*fakeConn, *connState) {
	c := newFakeConn(id, uid, sid)
	gen, err := h.s.enterRooms(c)
	if err != nil {
		c.Drop()
		return c, nil
	}
	st := h.s.newConn(c)
	st.setup(gen)
	return c, st
}

// settle waits until no lane or teardown is running.
func (h *harness) settle(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := h.s.work.wait(ctx); err != nil {
		t.Fatalf("work did not settle: %v", err)
	}
}

// The real services fit the interfaces the server is written against.
var (
	_ Accounts      = (*auth.Accounts)(nil)
	_ Chats         = (*chat.Service)(nil)
	_ SessionEvents = (*session.Manager)(nil)
	_ Users         = store.Store(nil)
)
