package redisadapter

import (
	"slices"
	"sync"
	"testing"

	"github.com/parley-chat/parley/internal/testenv"
)

// fakeLocal is a namespace of one node: sockets by id with their rooms
// (each socket in the room of its own id, as Socket.IO does), and every call
// the adapter makes recorded on calls.
type fakeLocal struct {
	mu      sync.Mutex
	sockets map[string][]string
	calls   chan call
	// ackArg is what each local socket answers to an acknowledged broadcast.
	ackArg any
}

type call struct {
	op     string
	packet *Packet
	opts   BroadcastOptions
	rooms  []string
	close  bool
	args   []any
}

func newFakeLocal(sockets map[string][]string) *fakeLocal {
	f := &fakeLocal{sockets: map[string][]string{}, calls: make(chan call, 64)}
	for id, rs := range sockets {
		f.sockets[id] = append([]string{id}, rs...)
	}
	return f
}

func (f *fakeLocal) selected(o BroadcastOptions) []string {
	var ids []string
	for id, rs := range f.sockets {
		in := len(o.Rooms) == 0
		for _, r := range o.Rooms {
			in = in || slices.Contains(rs, r)
		}
		for _, r := range o.Except {
			in = in && !slices.Contains(rs, r)
		}
		if in {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func (f *fakeLocal) Broadcast(p *Packet, o BroadcastOptions) {
	f.calls <- call{op: "broadcast", packet: p, opts: o}
}

func (f *fakeLocal) BroadcastWithAck(p *Packet, o BroadcastOptions, clientCount func(int), ack func(any)) {
	f.mu.Lock()
	n := len(f.selected(o))
	f.mu.Unlock()
	f.calls <- call{op: "broadcastWithAck", packet: p, opts: o}
	clientCount(n)
	for range n {
		ack(f.ackArg)
	}
}

func (f *fakeLocal) AddSockets(o BroadcastOptions, rooms []string) {
	f.mu.Lock()
	for _, id := range f.selected(o) {
		for _, r := range rooms {
			if !slices.Contains(f.sockets[id], r) {
				f.sockets[id] = append(f.sockets[id], r)
			}
		}
	}
	f.mu.Unlock()
	f.calls <- call{op: "addSockets", opts: o, rooms: rooms}
}

func (f *fakeLocal) DelSockets(o BroadcastOptions, rooms []string) {
	f.mu.Lock()
	for _, id := range f.selected(o) {
		f.sockets[id] = slices.DeleteFunc(f.sockets[id], func(r string) bool { return slices.Contains(rooms, r) })
	}
	f.mu.Unlock()
	f.calls <- call{op: "delSockets", opts: o, rooms: rooms}
}

func (f *fakeLocal) DisconnectSockets(o BroadcastOptions, close bool) {
	f.calls <- call{op: "disconnectSockets", opts: o, close: close}
}

func (f *fakeLocal) FetchSockets(o BroadcastOptions) []SocketDetails {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []SocketDetails
	for _, id := range f.selected(o) {
		out = append(out, SocketDetails{ID: id, Rooms: slices.Clone(f.sockets[id]), Data: map[string]any{"who": "go"}})
	}
	return out
}

func (f *fakeLocal) SocketIDs(rooms []string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.selected(BroadcastOptions{Rooms: rooms})
}

func (f *fakeLocal) Rooms() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, rs := range f.sockets {
		for _, r := range rs {
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	return out
}

func (f *fakeLocal) HasRoom(room string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, rs := range f.sockets {
		if slices.Contains(rs, room) {
			return true
		}
	}
	return false
}

func (f *fakeLocal) ServerSideEmit(args []any, ack func(any)) {
	f.calls <- call{op: "serverSideEmit", args: args}
	if ack != nil {
		ack(map[string]any{"from": "go", "got": args[len(args)-1]})
	}
}

// next waits for the adapter's next call on this node.
func (f *fakeLocal) next(t *testing.T) call {
	t.Helper()
	return testenv.Receive(t, f.calls, "call of the local adapter")
}
