package sio

import (
	"context"
	"sync"
)

// Namespace is a set of sockets with its middlewares, connection callback
// and adapter.
type Namespace struct {
	name    string
	server  *Server
	adapter Adapter

	mu       sync.RWMutex
	sockets  map[string]*Socket
	mws      []func(*Socket) error
	onConn   func(*Socket)
	onServer func(args []any)
}

// Name is the namespace's name ("/" for the main one).
func (n *Namespace) Name() string { return n.name }

// Adapter is the namespace's adapter.
func (n *Namespace) Adapter() Adapter { return n.adapter }

// Use adds a middleware. Middlewares run in order on every CONNECT,
// before the socket is registered; an error refuses the connection with a
// CONNECT_ERROR carrying its message (and a *Refusal's data). The
// middleware may call Socket.SetData, Socket.Auth, Socket.Handshake and
// Socket.Drop, not Join or Emit.
func (n *Namespace) Use(fn func(*Socket) error) {
	n.mu.Lock()
	n.mws = append(n.mws, fn)
	n.mu.Unlock()
}

// OnConnection sets the connection callback. It runs once the socket is
// registered and in its rooms (broadcasts reach it), before the client is
// told it is connected and before any of its events is handled: the place
// to join rooms and set OnEvent and OnDisconnect.
func (n *Namespace) OnConnection(fn func(*Socket)) {
	n.mu.Lock()
	n.onConn = fn
	n.mu.Unlock()
}

// OnServerSideEmit sets the listener of other nodes' ServerSideEmit.
func (n *Namespace) OnServerSideEmit(fn func(args []any)) {
	n.mu.Lock()
	n.onServer = fn
	n.mu.Unlock()
}

// ServerSideEmit sends args to the other nodes' namespaces of this name.
func (n *Namespace) ServerSideEmit(args ...any) error { return n.adapter.ServerSideEmit(args) }

// HandleServerSideEmit is how a cluster adapter delivers another node's
// ServerSideEmit.
func (n *Namespace) HandleServerSideEmit(args []any) {
	n.mu.RLock()
	fn := n.onServer
	n.mu.RUnlock()
	if fn != nil {
		fn(args)
	}
}

func (n *Namespace) middlewares() []func(*Socket) error {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.mws
}

func (n *Namespace) connectionHandler() func(*Socket) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.onConn
}

// Socket returns the local socket with that id, or nil.
func (n *Namespace) Socket(id string) *Socket { return n.socket(id) }

func (n *Namespace) socket(id string) *Socket {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.sockets[id]
}

// Len counts the namespace's local sockets.
func (n *Namespace) Len() int {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return len(n.sockets)
}

// add registers a socket and puts it in its own room (and, recovered, in
// the rooms it had).
func (n *Namespace) add(s *Socket) {
	n.mu.Lock()
	n.sockets[s.id] = s
	n.mu.Unlock()
	rooms := append([]string{s.id}, s.oldRooms...)
	s.oldRooms = nil
	n.adapter.AddAll(s.id, rooms)
	if !s.Connected() {
		// It went while being added: undo what onClose could not see.
		n.adapter.DelAll(s.id)
		n.remove(s)
	}
}

func (n *Namespace) remove(s *Socket) {
	n.mu.Lock()
	if n.sockets[s.id] == s {
		delete(n.sockets, s.id)
	}
	n.mu.Unlock()
}

// To starts a broadcast to the sockets in any of rooms.
func (n *Namespace) To(rooms ...string) *Operator { return (&Operator{nsp: n}).To(rooms...) }

// In is To.
func (n *Namespace) In(rooms ...string) *Operator { return n.To(rooms...) }

// Except starts a broadcast to every socket but those in rooms.
func (n *Namespace) Except(rooms ...string) *Operator {
	return (&Operator{nsp: n}).Except(rooms...)
}

// Emit sends an event to every socket of the namespace.
func (n *Namespace) Emit(event string, args ...any) error {
	return (&Operator{nsp: n}).Emit(event, args...)
}

// Broadcast sends an event to the sockets opts selects: Operator.Emit
// without building an Operator (opts' slices are not kept).
func (n *Namespace) Broadcast(opts BroadcastOptions, event string, args ...any) error {
	return (&Operator{nsp: n, opts: opts}).Emit(event, args...)
}

// Operator is a broadcast being built: To, Except and flags, then Emit or
// a room operation. Each method returns a new Operator.
type Operator struct {
	nsp  *Namespace
	opts BroadcastOptions
}

func (o *Operator) clone() *Operator {
	c := *o
	c.opts.Rooms = append([]string(nil), o.opts.Rooms...)
	c.opts.Except = append([]string(nil), o.opts.Except...)
	return &c
}

// To adds target rooms.
func (o *Operator) To(rooms ...string) *Operator {
	c := o.clone()
	c.opts.Rooms = append(c.opts.Rooms, rooms...)
	return c
}

// In is To.
func (o *Operator) In(rooms ...string) *Operator { return o.To(rooms...) }

// Except leaves out the sockets in rooms.
func (o *Operator) Except(rooms ...string) *Operator {
	c := o.clone()
	c.opts.Except = append(c.opts.Except, rooms...)
	return c
}

// Local keeps the operation on this node.
func (o *Operator) Local() *Operator {
	c := o.clone()
	c.opts.Flags.Local = true
	return c
}

// Volatile marks the broadcast as droppable (never stored for recovery).
func (o *Operator) Volatile() *Operator {
	c := o.clone()
	c.opts.Flags.Volatile = true
	return c
}

// Emit broadcasts an event, encoded once for every recipient.
func (o *Operator) Emit(event string, args ...any) error {
	data := make([]any, 0, len(args)+1)
	data = append(append(data, event), args...)
	return o.nsp.adapter.Broadcast(&Packet{Type: Event, Nsp: o.nsp.name, ID: NoID, Data: data}, o.opts)
}

// SocketsJoin makes the selected sockets join rooms.
func (o *Operator) SocketsJoin(rooms ...string) { o.nsp.adapter.AddSockets(o.opts, rooms) }

// SocketsLeave makes the selected sockets leave rooms.
func (o *Operator) SocketsLeave(rooms ...string) { o.nsp.adapter.DelSockets(o.opts, rooms) }

// DisconnectSockets disconnects the selected sockets; close also closes
// their connections.
func (o *Operator) DisconnectSockets(close bool) { o.nsp.adapter.DisconnectSockets(o.opts, close) }

// FetchSockets describes the selected sockets.
func (o *Operator) FetchSockets(ctx context.Context) ([]SocketInfo, error) {
	return o.nsp.adapter.FetchSockets(ctx, o.opts)
}
