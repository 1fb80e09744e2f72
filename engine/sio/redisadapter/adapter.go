package redisadapter

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parley-chat/parley/internal/redisconn"
)

// Local is this node's own adapter for one namespace: what Socket.IO's
// in-memory Adapter does, which the Redis adapter calls as its "super" for
// the sockets of this node.
type Local interface {
	// Broadcast delivers p to the local sockets opts selects.
	Broadcast(p *Packet, opts BroadcastOptions)
	// BroadcastWithAck delivers p under a packet id of its own choosing
	// (Node publishes these without one) and reports how many local
	// sockets got it, then each socket's acknowledgement (its first argument).
	BroadcastWithAck(p *Packet, opts BroadcastOptions, clientCount func(int), ack func(arg any))
	AddSockets(opts BroadcastOptions, rooms []string)
	DelSockets(opts BroadcastOptions, rooms []string)
	DisconnectSockets(opts BroadcastOptions, close bool)
	FetchSockets(opts BroadcastOptions) []SocketDetails
	// SocketIDs lists the local sockets in any of rooms (all when empty).
	SocketIDs(rooms []string) []string
	Rooms() []string
	HasRoom(room string) bool
	// ServerSideEmit hands another server's serverSideEmit to the
	// namespace's listeners; ack is nil unless the sender awaits answers.
	ServerSideEmit(args []any, ack func(arg any))
}

// Options configure an Adapter; the zero value is @socket.io/redis-adapter's
// defaults on namespace "/".
type Options struct {
	// Key prefixes every channel; default "socket.io".
	Key string
	// Nsp is the namespace; default "/".
	Nsp string
	// RequestsTimeout bounds FetchSockets, AllRooms and acknowledged
	// server-side emits; default 5 s.
	RequestsTimeout time.Duration
	// PublishOnSpecificResponseChannel answers on the requester's own
	// response channel, as the Node option of that name.
	PublishOnSpecificResponseChannel bool
	// OnResubscribe runs once the adapter subscribed again after its Redis
	// link dropped (or subscribed late, Redis being down at Start);
	// broadcasts published meanwhile were lost.
	OnResubscribe func()
	// RoomChange runs apply, another server's join or leave of this node's
	// sockets, and may order it against the node's own room bookkeeping
	// (Parley's events server takes its membership lock around it, as for
	// its own JoinChat). Default: apply().
	RoomChange func(apply func())
	Logger     *slog.Logger
}

// Adapter shares one namespace's broadcasts and socket operations with every
// other Socket.IO server (Parley or Node.js) on the same Redis.
type Adapter struct {
	rdb   *redis.Client
	local Local
	opts  Options
	log   *slog.Logger
	uid   string

	channel, requestChannel, responseChannel, specificResponseChannel string

	ps   *redis.PubSub
	done <-chan struct{}

	mu       sync.Mutex
	requests map[string]*pending
	acks     map[string]*ackRequest
}

// pending is a request of this node waiting for other nodes' answers.
type pending struct {
	typ      int
	numSub   int
	msgCount int
	sockets  []SocketDetails
	ids      []string
	rooms    []string
	answers  []any
	done     chan struct{}
}

type ackRequest struct {
	clientCount func(int)
	ack         func(any)
}

// ErrTimeout is returned when other nodes did not all answer in time.
var ErrTimeout = errors.New("redisadapter: timeout reached while waiting for responses")

// New returns an adapter; Start subscribes it.
func New(rdb *redis.Client, local Local, opts Options) *Adapter {
	if opts.Key == "" {
		opts.Key = "socket.io"
	}
	if opts.Nsp == "" {
		opts.Nsp = "/"
	}
	if opts.RequestsTimeout <= 0 {
		opts.RequestsTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.OnResubscribe == nil {
		opts.OnResubscribe = func() {}
	}
	if opts.RoomChange == nil {
		opts.RoomChange = func(apply func()) { apply() }
	}
	a := &Adapter{
		rdb: rdb, local: local, opts: opts, uid: newUID(),
		log:             opts.Logger.With("component", "redisadapter", "nsp", opts.Nsp),
		channel:         opts.Key + "#" + opts.Nsp + "#",
		requestChannel:  opts.Key + "-request#" + opts.Nsp + "#",
		responseChannel: opts.Key + "-response#" + opts.Nsp + "#",
		requests:        map[string]*pending{},
		acks:            map[string]*ackRequest{},
	}
	a.specificResponseChannel = a.responseChannel + a.uid + "#"
	return a
}

// UID is this adapter's id in the cluster; messages carrying it are its own.
func (a *Adapter) UID() string { return a.uid }

// Start subscribes and returns once Redis confirmed every subscription, so a
// message published afterwards reaches this node. An error means Redis did
// not confirm in time; the adapter still runs and subscribes as soon as Redis
// answers (OnResubscribe then runs), as go-redis re-subscribes by itself
// whenever the link drops.
func (a *Adapter) Start(ctx context.Context) error {
	a.ps = a.rdb.PSubscribe(ctx, a.channel+"*")
	_ = a.ps.Subscribe(ctx, a.requestChannel, a.responseChannel, a.specificResponseChannel) // Listen reports
	done, err := redisconn.Listen(ctx, a.ps, subscriptions, a.dispatch, func() {
		a.log.Info("subscribed to redis")
		a.opts.OnResubscribe()
	})
	a.done = done
	if err != nil {
		return fmt.Errorf("redisadapter: %w", err)
	}
	return nil
}

// subscriptions is how many channels and patterns an adapter subscribes to.
const subscriptions = 4

func (a *Adapter) dispatch(m *redis.Message) {
	if m.Pattern != "" {
		a.onBroadcast(m.Channel, []byte(m.Payload))
	} else {
		a.onRequest(m.Channel, []byte(m.Payload))
	}
}

// Close unsubscribes; requests still waiting end with ErrTimeout.
func (a *Adapter) Close() error {
	if a.ps == nil {
		return nil
	}
	err := a.ps.Close()
	<-a.done
	return err
}

// --- this node to the others ---

// Broadcast delivers p to this node's sockets, then publishes it to the
// other nodes (unless opts.Flags.Local): this node's sockets never wait for
// a Redis round trip, nor for a stalled Redis.
func (a *Adapter) Broadcast(ctx context.Context, p *Packet, opts BroadcastOptions) error {
	p.Nsp = a.opts.Nsp
	a.local.Broadcast(p, opts)
	if opts.Flags.Local {
		return nil
	}
	return a.publishBroadcast(ctx, p, opts)
}

func (a *Adapter) publishBroadcast(ctx context.Context, p *Packet, opts BroadcastOptions) error {
	msg, err := encodeBroadcast(a.uid, a.opts.Nsp, p, opts)
	if err != nil {
		return fmt.Errorf("redisadapter: %w", err)
	}
	channel := a.channel
	if len(opts.Rooms) == 1 {
		channel += opts.Rooms[0] + "#"
	}
	if err := a.rdb.Publish(ctx, channel, msg).Err(); err != nil {
		return fmt.Errorf("redisadapter: publish: %w", err)
	}
	return nil
}

// BroadcastWithAck publishes an acknowledged broadcast (p.ID set by the
// caller, opts.Flags.Timeout the wait) and delivers it locally; every node's
// client count and each client's ack arrive through the callbacks. Use
// ServerCount to know how many counts to expect.
func (a *Adapter) BroadcastWithAck(ctx context.Context, p *Packet, opts BroadcastOptions, clientCount func(int), ack func(any)) error {
	p.Nsp = a.opts.Nsp
	var err error
	if !opts.Flags.Local {
		err = a.publishBroadcastWithAck(ctx, p, opts, clientCount, ack)
	}
	a.local.BroadcastWithAck(p, opts, clientCount, ack)
	return err
}

func (a *Adapter) publishBroadcastWithAck(ctx context.Context, p *Packet, opts BroadcastOptions, clientCount func(int), ack func(any)) error {
	pk, err := p.wire(a.opts.Nsp)
	if err != nil {
		return fmt.Errorf("redisadapter: %w", err)
	}
	id := newUID()
	msg, err := encodeMsgpack(map[string]any{
		"uid": a.uid, "requestId": id, "type": reqBroadcast, "packet": pk, "opts": opts.wire(),
	})
	if err != nil {
		return fmt.Errorf("redisadapter: %w", err)
	}
	a.mu.Lock()
	a.acks[id] = &ackRequest{clientCount: clientCount, ack: ack}
	a.mu.Unlock()
	// As in Node: nothing tells this node when every client has answered,
	// so the entry simply expires with the broadcast's timeout.
	wait := time.Duration(opts.Flags.Timeout) * time.Millisecond
	if wait <= 0 {
		wait = a.opts.RequestsTimeout
	}
	time.AfterFunc(wait, func() {
		a.mu.Lock()
		delete(a.acks, id)
		a.mu.Unlock()
	})
	if err := a.rdb.Publish(ctx, a.requestChannel, msg).Err(); err != nil {
		return fmt.Errorf("redisadapter: publish: %w", err)
	}
	return nil
}

// AddSockets makes the sockets opts selects, on every node, join rooms.
func (a *Adapter) AddSockets(ctx context.Context, opts BroadcastOptions, rooms []string) error {
	return a.remoteOp(ctx, opts, reqRemoteJoin, map[string]any{"rooms": nonNil(rooms)},
		func() { a.local.AddSockets(opts, rooms) })
}

// DelSockets makes the sockets opts selects, on every node, leave rooms.
func (a *Adapter) DelSockets(ctx context.Context, opts BroadcastOptions, rooms []string) error {
	return a.remoteOp(ctx, opts, reqRemoteLeave, map[string]any{"rooms": nonNil(rooms)},
		func() { a.local.DelSockets(opts, rooms) })
}

// DisconnectSockets disconnects the sockets opts selects on every node;
// close also closes their underlying connections.
func (a *Adapter) DisconnectSockets(ctx context.Context, opts BroadcastOptions, close bool) error {
	return a.remoteOp(ctx, opts, reqRemoteDisconnect, map[string]any{"close": close},
		func() { a.local.DisconnectSockets(opts, close) })
}

// remoteOp applies a fire-and-forget request to this node's sockets at
// once, so a broadcast right after it already finds them in their new
// rooms, then publishes it for the others. (Node's adapter applies its own
// request only when Redis echoes it back; this node skips its echo.)
func (a *Adapter) remoteOp(ctx context.Context, opts BroadcastOptions, typ int, fields map[string]any, local func()) error {
	local()
	if opts.Flags.Local {
		return nil
	}
	req := map[string]any{"uid": a.uid, "type": typ, "opts": opts.selector()}
	for k, v := range fields {
		req[k] = v
	}
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("redisadapter: %w", err)
	}
	if err := a.rdb.Publish(ctx, a.requestChannel, b).Err(); err != nil {
		return fmt.Errorf("redisadapter: publish: %w", err)
	}
	return nil
}

// ServerCount is the number of Socket.IO servers of this namespace on Redis,
// this one included.
func (a *Adapter) ServerCount(ctx context.Context) (int, error) {
	res, err := a.rdb.PubSubNumSub(ctx, a.requestChannel).Result()
	if err != nil {
		return 0, fmt.Errorf("redisadapter: numsub: %w", err)
	}
	return int(res[a.requestChannel]), nil
}

// FetchSockets returns the sockets opts selects on every node.
func (a *Adapter) FetchSockets(ctx context.Context, opts BroadcastOptions) ([]SocketDetails, error) {
	local := a.local.FetchSockets(opts)
	if opts.Flags.Local {
		return local, nil
	}
	p, err := a.ask(ctx, reqRemoteFetch, map[string]any{"opts": opts.selector()}, 1, &pending{sockets: local})
	if err != nil || p == nil {
		return local, err
	}
	return p.sockets, nil
}

// AllRooms returns every room of the namespace on every node.
func (a *Adapter) AllRooms(ctx context.Context) ([]string, error) {
	local := a.local.Rooms()
	p, err := a.ask(ctx, reqAllRooms, nil, 1, &pending{rooms: local})
	if err != nil || p == nil {
		return local, err
	}
	seen := map[string]bool{}
	var out []string
	for _, r := range p.rooms {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out, nil
}

// ServerSideEmit hands args to the other servers' serverSideEmit listeners.
func (a *Adapter) ServerSideEmit(ctx context.Context, args []any) error {
	data, err := toWire(args)
	if err != nil {
		return fmt.Errorf("redisadapter: %w", err)
	}
	b, err := json.Marshal(map[string]any{"uid": a.uid, "type": reqServerSideEmit, "data": data})
	if err != nil {
		return fmt.Errorf("redisadapter: %w", err)
	}
	if err := a.rdb.Publish(ctx, a.requestChannel, b).Err(); err != nil {
		return fmt.Errorf("redisadapter: publish: %w", err)
	}
	return nil
}

// ServerSideEmitWithAck is ServerSideEmit awaiting one answer from every
// other server; on timeout it returns the answers so far and ErrTimeout.
func (a *Adapter) ServerSideEmitWithAck(ctx context.Context, args []any) ([]any, error) {
	data, err := toWire(args)
	if err != nil {
		return nil, fmt.Errorf("redisadapter: %w", err)
	}
	p, err := a.ask(ctx, reqServerSideEmit, map[string]any{"data": data}, 0, &pending{})
	if p == nil {
		return nil, err
	}
	return p.answers, err
}

// ask publishes a request every other server answers and waits for them.
// self is 1 when this node's own answer is already in p (Node counts itself
// among the subscribers), 0 when only others answer. p is nil when no other
// server exists.
func (a *Adapter) ask(ctx context.Context, typ int, fields map[string]any, self int, p *pending) (*pending, error) {
	n, err := a.ServerCount(ctx)
	if err != nil {
		return nil, err
	}
	if n-1 <= 0 {
		return nil, nil
	}
	id := newUID()
	req := map[string]any{"uid": a.uid, "requestId": id, "type": typ}
	for k, v := range fields {
		req[k] = v
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("redisadapter: %w", err)
	}
	p.typ, p.numSub, p.msgCount, p.done = typ, n-1+self, self, make(chan struct{})
	a.mu.Lock()
	a.requests[id] = p
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.requests, id)
		a.mu.Unlock()
	}()
	if err := a.rdb.Publish(ctx, a.requestChannel, b).Err(); err != nil {
		return nil, fmt.Errorf("redisadapter: publish: %w", err)
	}
	timer := time.NewTimer(a.opts.RequestsTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return p, nil
	case <-timer.C:
	case <-ctx.Done():
	}
	a.mu.Lock()
	delete(a.requests, id)
	partial := *p
	a.mu.Unlock()
	return &partial, ErrTimeout
}

// --- the others to this node ---

func (a *Adapter) onBroadcast(channel string, msg []byte) {
	if !strings.HasPrefix(channel, a.channel) {
		return
	}
	// "prefix#nsp#" is namespace-wide or several rooms; "prefix#nsp#room#"
	// is one room.
	if room := strings.TrimSuffix(channel[len(a.channel):], "#"); room != "" && !a.local.HasRoom(room) {
		return // no socket of this node is in that room
	}
	uid, p, opts, err := decodeBroadcast(msg)
	if err != nil {
		a.log.Warn("ignore malformed broadcast", "channel", channel, "err", err)
		return
	}
	if uid == a.uid || p.Nsp != a.opts.Nsp {
		return
	}
	a.local.Broadcast(p, opts)
}

func (a *Adapter) onRequest(channel string, msg []byte) {
	if strings.HasPrefix(channel, a.responseChannel) {
		a.onResponse(msg)
		return
	}
	if channel != a.requestChannel {
		return
	}
	req, err := decodeEither(msg)
	if err != nil {
		a.log.Warn("ignore malformed request", "err", err)
		return
	}
	typ, _ := toInt(req["type"])
	id, _ := req["requestId"].(string)
	uid, _ := req["uid"].(string)
	opts := optionsFrom(req["opts"])
	switch typ {
	case reqSockets:
		if a.isMine(id) {
			return
		}
		a.respond(uid, map[string]any{"requestId": id, "sockets": nonNil(a.local.SocketIDs(rooms(req["rooms"])))})
	case reqAllRooms:
		if a.isMine(id) {
			return
		}
		a.respond(uid, map[string]any{"requestId": id, "rooms": nonNil(a.local.Rooms())})
	case reqRemoteJoin, reqRemoteLeave, reqRemoteDisconnect:
		if uid == a.uid {
			return // applied when sent
		}
		a.onRemoteOp(typ, uid, id, req, opts)
	case reqRemoteFetch:
		if a.isMine(id) {
			return
		}
		sockets := a.local.FetchSockets(opts)
		if sockets == nil {
			sockets = []SocketDetails{}
		}
		a.respond(uid, map[string]any{"requestId": id, "sockets": sockets})
	case reqServerSideEmit:
		if uid == a.uid {
			return
		}
		data, _ := req["data"].([]any)
		if id == "" {
			a.local.ServerSideEmit(data, nil)
			return
		}
		var once sync.Once
		a.local.ServerSideEmit(data, func(arg any) {
			once.Do(func() {
				// Node answers on the shared response channel whatever
				// its publishOnSpecificResponseChannel says.
				a.publishJSON(a.responseChannel, map[string]any{"type": reqServerSideEmit, "requestId": id, "data": arg})
			})
		})
	case reqBroadcast:
		a.mu.Lock()
		_, mine := a.acks[id]
		a.mu.Unlock()
		if mine {
			return
		}
		p, err := packetFrom(req["packet"])
		if err != nil {
			a.log.Warn("ignore malformed broadcast request", "err", err)
			return
		}
		a.local.BroadcastWithAck(p, opts,
			func(n int) {
				a.respond(uid, map[string]any{"type": reqBroadcastClientCount, "requestId": id, "clientCount": n})
			},
			func(arg any) {
				w, err := toWire(arg)
				if err != nil {
					a.log.Warn("drop unencodable ack", "err", err)
					return
				}
				b, err := encodeMsgpack(map[string]any{"type": reqBroadcastAck, "requestId": id, "packet": w})
				if err != nil {
					a.log.Warn("drop unencodable ack", "err", err)
					return
				}
				a.publish(a.responseChannelFor(uid), b)
			})
	}
}

// onRemoteOp applies a join, leave or disconnect. The legacy form names one
// socket (sid) and expects an answer; every socket is in the room named by
// its id, so it becomes a selection of that room.
func (a *Adapter) onRemoteOp(typ int64, uid, id string, req map[string]any, opts BroadcastOptions) {
	legacy := req["opts"] == nil
	if legacy {
		sid, _ := req["sid"].(string)
		if sid == "" || !a.local.HasRoom(sid) {
			return
		}
		opts = BroadcastOptions{Rooms: []string{sid}}
	}
	switch typ {
	case reqRemoteJoin, reqRemoteLeave:
		rs := rooms(req["rooms"])
		if legacy {
			room, _ := req["room"].(string)
			rs = []string{room}
		}
		a.opts.RoomChange(func() {
			if typ == reqRemoteJoin {
				a.local.AddSockets(opts, rs)
			} else {
				a.local.DelSockets(opts, rs)
			}
		})
	case reqRemoteDisconnect:
		closeConn, _ := req["close"].(bool)
		a.local.DisconnectSockets(opts, closeConn)
	}
	if legacy {
		a.respond(uid, map[string]any{"requestId": id})
	}
}

func (a *Adapter) isMine(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.requests[id]
	return ok
}

func (a *Adapter) onResponse(msg []byte) {
	res, err := decodeEither(msg)
	if err != nil {
		a.log.Warn("ignore malformed response", "err", err)
		return
	}
	id, _ := res["requestId"].(string)
	a.mu.Lock()
	ack, isAck := a.acks[id]
	a.mu.Unlock()
	if isAck {
		// Called on the receiving goroutine, so a node's count comes
		// before its clients' acks, as it was published.
		typ, _ := toInt(res["type"])
		switch typ {
		case reqBroadcastClientCount:
			n, _ := toInt(res["clientCount"])
			ack.clientCount(int(n))
		case reqBroadcastAck:
			ack.ack(res["packet"])
		}
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	p, ok := a.requests[id]
	if !ok {
		return
	}
	select {
	case <-p.done:
		return // already complete
	default:
	}
	switch p.typ {
	case reqRemoteFetch:
		p.msgCount++
		list, ok := res["sockets"].([]any)
		if !ok {
			return
		}
		for _, s := range list {
			var d SocketDetails
			if b, err := json.Marshal(s); err == nil && json.Unmarshal(b, &d) == nil {
				p.sockets = append(p.sockets, d)
			}
		}
	case reqAllRooms:
		p.msgCount++
		p.rooms = append(p.rooms, rooms(res["rooms"])...)
	case reqServerSideEmit:
		p.msgCount++
		p.answers = append(p.answers, res["data"])
	default:
		return
	}
	if p.msgCount >= p.numSub {
		close(p.done)
	}
}

func (a *Adapter) responseChannelFor(uid string) string {
	if a.opts.PublishOnSpecificResponseChannel && uid != "" {
		return a.responseChannel + uid + "#"
	}
	return a.responseChannel
}

func (a *Adapter) respond(uid string, v map[string]any) {
	a.publishJSON(a.responseChannelFor(uid), v)
}

func (a *Adapter) publishJSON(channel string, v map[string]any) {
	b, err := json.Marshal(v)
	if err != nil {
		a.log.Warn("drop unencodable response", "err", err)
		return
	}
	a.publish(channel, b)
}

func (a *Adapter) publish(channel string, b []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), a.opts.RequestsTimeout)
	defer cancel()
	if err := a.rdb.Publish(ctx, channel, b).Err(); err != nil {
		a.log.Warn("publish response", "channel", channel, "err", err)
	}
}

// newUID returns a random 6-character id, as uid2(6) does in Node.
func newUID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	var b [6]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}
