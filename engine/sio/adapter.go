package sio

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// BroadcastFlags modify a broadcast, as socket.io's flags do.
type BroadcastFlags struct {
	// Local keeps the broadcast on this node: a cluster adapter does not
	// forward it (it is how a cluster adapter delivers what it received).
	Local bool
	// Volatile packets may be lost; they are never stored for recovery.
	Volatile bool
}

// BroadcastOptions select sockets: those in any of Rooms (every socket of
// the namespace when Rooms is empty) and in none of Except.
type BroadcastOptions struct {
	Rooms  []string
	Except []string
	Flags  BroadcastFlags
}

// SocketInfo describes a socket that may live on another node, as
// socket.io's RemoteSocket does.
type SocketInfo struct {
	ID        string
	Rooms     []string
	Data      any
	Handshake *Handshake
}

// Session is a disconnected socket's state kept for connection-state
// recovery; MissedPackets (each an event's arguments, its offset last) is
// filled in by RestoreSession.
type Session struct {
	SID, PID       string
	Rooms          []string
	Data           any
	DisconnectedAt time.Time
	MissedPackets  [][]any
}

// Adapter keeps a namespace's rooms and delivers its broadcasts. The
// local one (NewLocalAdapter) serves one node; a cluster adapter (Redis)
// forwards broadcasts and room changes to the other nodes and applies
// theirs through the local one, as socket.io's ClusterAdapter does.
//
// Methods that act on sockets by options (AddSockets, DelSockets,
// DisconnectSockets, FetchSockets, Sockets) reach every node; AddAll, Del
// and DelAll change one local socket's rooms.
type Adapter interface {
	AddAll(id string, rooms []string)
	Del(id, room string)
	DelAll(id string)
	// SocketRooms lists a local socket's rooms (nil when unknown).
	SocketRooms(id string) []string
	// Broadcast sends p (an EVENT) to the sockets opts selects.
	Broadcast(p *Packet, opts BroadcastOptions) error
	Sockets(ctx context.Context, opts BroadcastOptions) ([]string, error)
	FetchSockets(ctx context.Context, opts BroadcastOptions) ([]SocketInfo, error)
	AddSockets(opts BroadcastOptions, rooms []string)
	DelSockets(opts BroadcastOptions, rooms []string)
	DisconnectSockets(opts BroadcastOptions, close bool)
	// ServerSideEmit sends args to the namespace's server-side listeners on
	// the other nodes (none for the local adapter).
	ServerSideEmit(args []any) error
	// PersistSession keeps a disconnected socket's state for recovery;
	// RestoreSession takes it back with the packets it missed since offset
	// (nil, nil when it cannot be restored).
	PersistSession(s *Session)
	RestoreSession(pid, offset string) (*Session, error)
	Close()
}

// LocalAdapter is the in-memory Adapter: rooms of this node's sockets.
// With a recovery window it also keeps sessions and broadcast packets for
// connection-state recovery, as socket.io's SessionAwareAdapter does.
type LocalAdapter struct {
	nsp *Namespace

	mu      sync.RWMutex
	rooms   map[string]map[*member]struct{}
	members map[string]*member

	recovery time.Duration // 0: off
	now      func() time.Time
	recMu    sync.Mutex
	sessions map[string]*Session // by pid
	packets  []storedPacket      // oldest first
	offsets  atomic.Uint64
}

var _ Adapter = (*LocalAdapter)(nil)

// member is one local socket in the adapter.
type member struct {
	sock  *Socket
	rooms map[string]struct{}
}

type storedPacket struct {
	id   string
	at   time.Time
	opts BroadcastOptions
	data []any
}

// NewLocalAdapter is the default adapter. A cluster adapter builds one
// too, for this node's sockets, and applies other nodes' operations to it
// (with BroadcastOptions.Flags.Local, so nothing is forwarded again).
func NewLocalAdapter(nsp *Namespace) *LocalAdapter {
	a := &LocalAdapter{
		nsp: nsp, rooms: map[string]map[*member]struct{}{}, members: map[string]*member{},
		now: time.Now, sessions: map[string]*Session{},
	}
	if nsp != nil && nsp.server != nil {
		a.recovery = nsp.server.opts.RecoveryWindow
	}
	return a
}

// AddAll puts a local socket in rooms.
func (a *LocalAdapter) AddAll(id string, rooms []string) {
	sock := a.nsp.socket(id)
	if sock == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	m := a.members[id]
	if m == nil {
		m = &member{sock: sock, rooms: make(map[string]struct{}, len(rooms))}
		a.members[id] = m
	}
	for _, r := range rooms {
		m.rooms[r] = struct{}{}
		set := a.rooms[r]
		if set == nil {
			set = map[*member]struct{}{}
			a.rooms[r] = set
		}
		set[m] = struct{}{}
	}
}

// Del takes a local socket out of one room.
func (a *LocalAdapter) Del(id, room string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if m := a.members[id]; m != nil {
		a.delLocked(m, room)
	}
}

func (a *LocalAdapter) delLocked(m *member, room string) {
	delete(m.rooms, room)
	if set := a.rooms[room]; set != nil {
		delete(set, m)
		if len(set) == 0 {
			delete(a.rooms, room)
		}
	}
}

// DelAll takes a local socket out of every room and forgets it.
func (a *LocalAdapter) DelAll(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := a.members[id]
	if m == nil {
		return
	}
	for r := range m.rooms {
		a.delLocked(m, r)
	}
	delete(a.members, id)
}

// SocketRooms lists a local socket's rooms.
func (a *LocalAdapter) SocketRooms(id string) []string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	m := a.members[id]
	if m == nil {
		return nil
	}
	out := make([]string, 0, len(m.rooms))
	for r := range m.rooms {
		out = append(out, r)
	}
	return out
}

var targetPool = sync.Pool{New: func() any { s := make([]*Socket, 0, 64); return &s }}

// collect appends the local sockets opts selects.
func (a *LocalAdapter) collect(dst []*Socket, opts BroadcastOptions) []*Socket {
	a.mu.RLock()
	defer a.mu.RUnlock()
	var except map[*member]struct{}
	var exceptOne *member
	for _, r := range opts.Except {
		for m := range a.rooms[r] {
			if exceptOne == nil && except == nil {
				exceptOne = m
				continue
			}
			if except == nil {
				except = map[*member]struct{}{exceptOne: {}}
			}
			except[m] = struct{}{}
		}
	}
	skip := func(m *member) bool {
		if except != nil {
			_, ok := except[m]
			return ok
		}
		return m == exceptOne
	}
	switch len(opts.Rooms) {
	case 0:
		for _, m := range a.members {
			if !skip(m) {
				dst = append(dst, m.sock)
			}
		}
	case 1:
		for m := range a.rooms[opts.Rooms[0]] {
			if !skip(m) {
				dst = append(dst, m.sock)
			}
		}
	default:
		seen := map[*member]struct{}{}
		for _, r := range opts.Rooms {
			for m := range a.rooms[r] {
				if _, dup := seen[m]; dup || skip(m) {
					continue
				}
				seen[m] = struct{}{}
				dst = append(dst, m.sock)
			}
		}
	}
	return dst
}

// Broadcast encodes p once and hands the same messages to every target.
func (a *LocalAdapter) Broadcast(p *Packet, opts BroadcastOptions) error {
	if a.recovery > 0 && p.Type == Event && p.ID == NoID && !opts.Flags.Volatile {
		if data, ok := p.Data.([]any); ok {
			p = a.store(p, data, opts)
		}
	}
	enc, err := Encode(p)
	if err != nil {
		return err
	}
	a.deliver(enc.frames(), opts)
	return nil
}

// BroadcastEncoded delivers an encoded EVENT without storing it for
// recovery: for a cluster adapter relaying what another node encoded.
func (a *LocalAdapter) BroadcastEncoded(enc Encoded, opts BroadcastOptions) {
	a.deliver(enc.frames(), opts)
}

func (a *LocalAdapter) deliver(f *frames, opts BroadcastOptions) {
	tp := targetPool.Get().(*[]*Socket)
	targets := a.collect((*tp)[:0], opts)
	for _, s := range targets {
		s.sendFrames(f)
	}
	clear(targets)
	*tp = targets[:0]
	targetPool.Put(tp)
}

// store appends the recovery offset to an event and keeps it for the
// recovery window.
func (a *LocalAdapter) store(p *Packet, data []any, opts BroadcastOptions) *Packet {
	id := strconv.FormatUint(a.offsets.Add(1), 36)
	withOffset := make([]any, len(data)+1)
	copy(withOffset, data)
	withOffset[len(data)] = id
	now := a.now()
	a.recMu.Lock()
	drop := 0
	for drop < len(a.packets) && now.Sub(a.packets[drop].at) > a.recovery {
		drop++
	}
	if drop > 0 {
		clear(a.packets[:drop])
		a.packets = a.packets[drop:]
	}
	kept := BroadcastOptions{Rooms: slices.Clone(opts.Rooms), Except: slices.Clone(opts.Except), Flags: opts.Flags}
	a.packets = append(a.packets, storedPacket{id: id, at: now, opts: kept, data: withOffset})
	a.recMu.Unlock()
	return &Packet{Type: p.Type, Nsp: p.Nsp, ID: p.ID, Data: withOffset}
}

// HasRoom reports whether any socket of this node is in room.
func (a *LocalAdapter) HasRoom(room string) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return len(a.rooms[room]) > 0
}

// Sockets lists the ids of the sockets opts selects.
func (a *LocalAdapter) Sockets(_ context.Context, opts BroadcastOptions) ([]string, error) {
	targets := a.collect(nil, opts)
	ids := make([]string, len(targets))
	for i, s := range targets {
		ids[i] = s.id
	}
	return ids, nil
}

// FetchSockets describes the sockets opts selects.
func (a *LocalAdapter) FetchSockets(_ context.Context, opts BroadcastOptions) ([]SocketInfo, error) {
	targets := a.collect(nil, opts)
	out := make([]SocketInfo, len(targets))
	for i, s := range targets {
		out[i] = SocketInfo{ID: s.id, Rooms: a.SocketRooms(s.id), Data: s.Data(), Handshake: s.client.hs}
	}
	return out, nil
}

// AddSockets makes the sockets opts selects join rooms.
func (a *LocalAdapter) AddSockets(opts BroadcastOptions, rooms []string) {
	for _, s := range a.collect(nil, opts) {
		a.AddAll(s.id, rooms)
	}
}

// DelSockets makes the sockets opts selects leave rooms.
func (a *LocalAdapter) DelSockets(opts BroadcastOptions, rooms []string) {
	for _, s := range a.collect(nil, opts) {
		for _, r := range rooms {
			a.Del(s.id, r)
		}
	}
}

// DisconnectSockets disconnects the sockets opts selects; close also
// closes their connections.
func (a *LocalAdapter) DisconnectSockets(opts BroadcastOptions, close bool) {
	for _, s := range a.collect(nil, opts) {
		s.Disconnect(close)
	}
}

// ServerSideEmit has no other node to reach.
func (a *LocalAdapter) ServerSideEmit([]any) error { return nil }

// PersistSession keeps s for the recovery window.
func (a *LocalAdapter) PersistSession(s *Session) {
	if a.recovery <= 0 {
		return
	}
	now := a.now()
	a.recMu.Lock()
	defer a.recMu.Unlock()
	for pid, old := range a.sessions {
		if now.Sub(old.DisconnectedAt) > a.recovery {
			delete(a.sessions, pid)
		}
	}
	s.DisconnectedAt = now
	a.sessions[s.PID] = s
}

// RestoreSession takes back the session of pid with the packets it missed
// after offset. An unknown pid, an expired session or an offset no longer
// kept restore nothing.
func (a *LocalAdapter) RestoreSession(pid, offset string) (*Session, error) {
	a.recMu.Lock()
	defer a.recMu.Unlock()
	s := a.sessions[pid]
	if s == nil {
		return nil, nil
	}
	delete(a.sessions, pid)
	if a.now().Sub(s.DisconnectedAt) > a.recovery {
		return nil, nil
	}
	i := slices.IndexFunc(a.packets, func(p storedPacket) bool { return p.id == offset })
	if i < 0 {
		return nil, nil
	}
	restored := *s
	restored.MissedPackets = nil
	for _, p := range a.packets[i+1:] {
		if reaches(s.Rooms, p.opts) {
			restored.MissedPackets = append(restored.MissedPackets, p.data)
		}
	}
	return &restored, nil
}

// reaches tells whether a socket in rooms was a target of opts.
func reaches(rooms []string, opts BroadcastOptions) bool {
	in := len(opts.Rooms) == 0
	for _, r := range opts.Rooms {
		if slices.Contains(rooms, r) {
			in = true
			break
		}
	}
	if !in {
		return false
	}
	for _, r := range opts.Except {
		if slices.Contains(rooms, r) {
			return false
		}
	}
	return true
}

// Close forgets every room and session.
func (a *LocalAdapter) Close() {
	a.mu.Lock()
	a.rooms = map[string]map[*member]struct{}{}
	a.members = map[string]*member{}
	a.mu.Unlock()
	a.recMu.Lock()
	a.sessions = map[string]*Session{}
	a.packets = nil
	a.recMu.Unlock()
}
