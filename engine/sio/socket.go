package sio

import (
	"strconv"
	"sync"
	"sync/atomic"
)

// AckFunc answers a client's event. Calling it more than once, or after
// the socket is gone, does nothing.
type AckFunc func(args ...any)

// EventHandler receives a client's event: its name, its arguments as
// encoding/json decodes them into `any` (binary attachments as []byte),
// and the ack, nil when the client asked for none. It runs on the
// connection's read path: events of one connection arrive one at a time.
type EventHandler func(event string, args []any, ack AckFunc)

// Socket states.
const (
	stateConnecting int32 = iota // middlewares and OnConnection run; sends wait
	stateConnected
	stateClosed
)

// Socket is one client in one namespace.
type Socket struct {
	id     string
	pid    string
	nsp    *Namespace
	client *client
	auth   map[string]any // guarded by mu; nil once connected (see Auth)

	recovered bool
	oldRooms  []string
	missed    [][]any

	state atomic.Int32

	mu           sync.Mutex
	pending      []*frames // sent while connecting, written after CONNECT
	flushOnOpen  bool      // disconnected while connecting: still say CONNECT first
	dropped      bool      // Drop was called: never say CONNECT
	data         any
	onEvent      EventHandler
	onDisconnect func(reason string)
	acks         map[int64]func(args []any)
	nextAck      int64
	closeOnce    sync.Once
}

func newSocket(nsp *Namespace, c *client, auth map[string]any) *Socket {
	s := &Socket{id: newID(), nsp: nsp, client: c, auth: auth}
	if nsp.server.opts.RecoveryWindow > 0 {
		s.pid = newID()
	}
	return s
}

// ID is the socket's id; it is also a room holding only this socket.
func (s *Socket) ID() string { return s.id }

// Namespace is the socket's namespace.
func (s *Socket) Namespace() *Namespace { return s.nsp }

// Handshake is the connection's handshake request.
func (s *Socket) Handshake() *Handshake { return s.client.hs }

// Auth is the CONNECT payload (protocol 5) or the handshake query and the
// namespace's query (protocol 4), for the middlewares and the connection
// handler; never nil. Once the connection handler has returned it is
// empty: the payload (a token, usually) is not kept for the socket's life.
func (s *Socket) Auth() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.auth == nil {
		return map[string]any{}
	}
	return s.auth
}

// forgetAuth drops the CONNECT payload once the socket is connected.
func (s *Socket) forgetAuth() {
	s.mu.Lock()
	s.auth = nil
	s.mu.Unlock()
}

// Protocol is the Engine.IO protocol of the connection: 4, or 3 for
// socket.io-client 2.x (Socket.IO protocol 4).
func (s *Socket) Protocol() int { return s.client.conn.Protocol() }

// Recovered tells whether connection-state recovery restored this socket.
func (s *Socket) Recovered() bool { return s.recovered }

// Connected tells whether the socket is still in its namespace.
func (s *Socket) Connected() bool { return s.state.Load() != stateClosed }

// Data and SetData hold the application's state for the socket; it
// survives connection-state recovery.
func (s *Socket) Data() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data
}

func (s *Socket) SetData(v any) {
	s.mu.Lock()
	s.data = v
	s.mu.Unlock()
}

// OnEvent sets the handler of the client's events; set it in the
// connection callback, before any event can arrive.
func (s *Socket) OnEvent(h EventHandler) {
	s.mu.Lock()
	s.onEvent = h
	s.mu.Unlock()
}

// OnDisconnect sets what runs once when the socket goes, whatever the
// reason. A handler set after the socket went is not called: check
// Connected after setting it.
func (s *Socket) OnDisconnect(fn func(reason string)) {
	s.mu.Lock()
	s.onDisconnect = fn
	s.mu.Unlock()
}

// Join puts the socket in rooms.
func (s *Socket) Join(rooms ...string) { s.nsp.adapter.AddAll(s.id, rooms) }

// Leave takes the socket out of room.
func (s *Socket) Leave(room string) { s.nsp.adapter.Del(s.id, room) }

// Rooms lists the socket's rooms, its own id's among them.
func (s *Socket) Rooms() []string { return s.nsp.adapter.SocketRooms(s.id) }

// To starts a broadcast to rooms from this socket: it is left out.
func (s *Socket) To(rooms ...string) *Operator {
	return &Operator{nsp: s.nsp, opts: BroadcastOptions{Rooms: rooms, Except: []string{s.id}}}
}

// Emit sends an event to this socket. With connection-state recovery on
// it goes through the adapter, as socket.io's does, so it is stored (and
// gets its offset) like a broadcast.
func (s *Socket) Emit(event string, args ...any) error {
	if s.nsp.server.opts.RecoveryWindow > 0 {
		data := make([]any, 0, len(args)+1)
		data = append(append(data, event), args...)
		// Local: a socket's own room is on this node only; a cluster
		// adapter need not publish it.
		return s.nsp.adapter.Broadcast(&Packet{Type: Event, Nsp: s.nsp.name, ID: NoID, Data: data},
			BroadcastOptions{Rooms: []string{s.id}, Flags: BroadcastFlags{Local: true}})
	}
	enc, err := encodeEvent(s.nsp.name, NoID, event, args)
	if err != nil {
		return err
	}
	s.sendFrames(enc.frames())
	return nil
}

// EmitWithAck sends an event whose answer the client acknowledges; ack
// gets the client's arguments. It is never called if the socket goes first.
func (s *Socket) EmitWithAck(event string, ack func(args []any), args ...any) error {
	s.mu.Lock()
	id := s.nextAck
	s.nextAck++
	if s.acks == nil {
		s.acks = map[int64]func([]any){}
	}
	s.acks[id] = ack
	s.mu.Unlock()
	enc, err := encodeEvent(s.nsp.name, id, event, args)
	if err != nil {
		s.mu.Lock()
		delete(s.acks, id)
		s.mu.Unlock()
		return err
	}
	s.sendFrames(enc.frames())
	return nil
}

// Disconnect takes the socket out of its namespace: the client gets a
// DISCONNECT ("io server disconnect") and does not reconnect by itself.
// close also closes the connection, with every namespace on it.
func (s *Socket) Disconnect(close bool) {
	if close {
		c := s.client
		c.mu.Lock()
		socks := make([]*Socket, 0, len(c.sockets))
		for _, o := range c.sockets {
			socks = append(socks, o)
		}
		c.mu.Unlock()
		for _, o := range socks {
			o.Disconnect(false)
		}
		c.closeSockets("server namespace disconnect")
		c.conn.Close()
		return
	}
	if s.state.Load() == stateClosed {
		return
	}
	enc, err := Encode(&Packet{Type: Disconnect, Nsp: s.nsp.name, ID: NoID})
	if err == nil {
		s.mu.Lock()
		if s.state.Load() == stateConnecting {
			s.flushOnOpen = true
		}
		s.mu.Unlock()
		s.sendFrames(enc.frames())
	}
	s.onClose("server namespace disconnect")
}

// Drop closes the connection without a DISCONNECT: the client sees a
// transport close and reconnects by itself (and may recover its state).
// Called from a middleware or the connection callback, the client is never
// told it connected.
func (s *Socket) Drop() {
	s.mu.Lock()
	s.dropped = true
	s.mu.Unlock()
	s.client.conn.Drop()
}

// sendFrames writes f to the client, after the CONNECT answer if the
// socket is still connecting.
func (s *Socket) sendFrames(f *frames) {
	switch s.state.Load() {
	case stateConnected:
		_ = s.client.conn.send(f)
		return
	case stateClosed:
		return
	}
	s.mu.Lock()
	switch s.state.Load() {
	case stateConnecting:
		s.pending = append(s.pending, f)
		s.mu.Unlock()
	case stateConnected:
		s.mu.Unlock()
		_ = s.client.conn.send(f)
	default:
		s.mu.Unlock()
	}
}

// open answers the CONNECT, replays what a recovered socket missed and
// writes what was sent to it meanwhile, in that order, then lets sends
// through directly.
func (s *Socket) open() {
	var data any
	if s.Protocol() != 3 {
		hello := map[string]any{"sid": s.id}
		if s.pid != "" {
			hello["pid"] = s.pid
		}
		data = hello
	}
	connect, err := Encode(&Packet{Type: Connect, Nsp: s.nsp.name, ID: NoID, Data: data})
	if err != nil {
		return
	}
	out := []*frames{connect.frames()}
	for _, args := range s.missed {
		if enc, err := Encode(&Packet{Type: Event, Nsp: s.nsp.name, ID: NoID, Data: args}); err == nil {
			out = append(out, enc.frames())
		}
	}
	s.missed = nil
	// Sends go out without s.mu held (a send that overflows the queue
	// closes the socket from inside it); what is sent meanwhile keeps
	// queueing behind, until a round finds nothing left.
	for {
		s.mu.Lock()
		if s.dropped || (s.state.Load() == stateClosed && !s.flushOnOpen) {
			s.pending = nil
			s.mu.Unlock()
			return
		}
		batch := append(out, s.pending...)
		out, s.pending = nil, nil
		if len(batch) == 0 {
			s.state.CompareAndSwap(stateConnecting, stateConnected)
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		for _, f := range batch {
			_ = s.client.conn.send(f)
		}
	}
}

// restore takes back a disconnected session named by the CONNECT's pid
// and offset, if the adapter still has it and the server accepts it.
func (s *Socket) restore(auth map[string]any) {
	pid, _ := auth["pid"].(string)
	offset, _ := auth["offset"].(string)
	if pid == "" || offset == "" {
		return
	}
	sess, err := s.nsp.adapter.RestoreSession(pid, offset)
	if err != nil || sess == nil {
		return
	}
	if fn := s.nsp.server.opts.AcceptRecovery; fn != nil && !fn(s, sess.Data) {
		return
	}
	s.id, s.pid = sess.SID, sess.PID
	s.mu.Lock()
	if s.data == nil {
		s.data = sess.Data // the middlewares set none of their own
	}
	s.mu.Unlock()
	s.recovered, s.oldRooms, s.missed = true, sess.Rooms, sess.MissedPackets
}

// recoverable are the reasons after which a session is kept for recovery
// (socket.io's list).
var recoverable = map[string]bool{
	"transport error": true, "transport close": true, "forced close": true,
	"ping timeout": true, "server shutting down": true, "forced server close": true,
}

// onClose ends the socket once: out of its rooms (its state kept for
// recovery if the reason allows), out of its namespace, then the handler.
func (s *Socket) onClose(reason string) {
	s.closeOnce.Do(func() {
		prev := s.state.Swap(stateClosed)
		a := s.nsp.adapter
		if s.pid != "" && prev == stateConnected && recoverable[reason] {
			a.PersistSession(&Session{SID: s.id, PID: s.pid, Rooms: a.SocketRooms(s.id), Data: s.Data()})
		}
		a.DelAll(s.id)
		s.nsp.remove(s)
		s.client.remove(s)
		s.mu.Lock()
		fn := s.onDisconnect
		s.acks = nil
		s.mu.Unlock()
		if fn != nil {
			fn(reason)
		}
	})
}

// onPacket handles a packet for this socket's namespace.
func (s *Socket) onPacket(p *Packet) {
	if s.state.Load() != stateConnected {
		return
	}
	switch p.Type {
	case Event, BinaryEvent:
		args := p.Data.([]any)
		var name string
		switch n := args[0].(type) {
		case string:
			name = n
		case float64:
			name = strconv.FormatFloat(n, 'g', -1, 64)
		}
		var ack AckFunc
		if p.ID >= 0 {
			ack = s.ackFunc(p.ID)
		}
		s.mu.Lock()
		h := s.onEvent
		s.mu.Unlock()
		if h != nil {
			h(name, args[1:], ack)
		}
	case Ack, BinaryAck:
		s.mu.Lock()
		fn := s.acks[p.ID]
		delete(s.acks, p.ID)
		s.mu.Unlock()
		if fn != nil {
			fn(p.Data.([]any))
		}
	case Disconnect:
		s.onClose("client namespace disconnect")
	}
}

func (s *Socket) ackFunc(id int64) AckFunc {
	var done atomic.Bool
	return func(args ...any) {
		if !done.CompareAndSwap(false, true) {
			return
		}
		if args == nil {
			args = []any{}
		}
		enc, err := Encode(&Packet{Type: Ack, Nsp: s.nsp.name, ID: id, Data: args})
		if err != nil {
			s.nsp.server.log.Error("socket.io: encode ack", "err", err)
			return
		}
		s.sendFrames(enc.frames())
	}
}
