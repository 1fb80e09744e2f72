package redisadapter

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parley-chat/parley/engine/sio"
)

// opTimeout bounds the Redis calls of the sio.Adapter methods that take no
// context.
const opTimeout = 5 * time.Second

// Factory returns an sio.Options.Adapter that puts each namespace on Redis:
// the namespace's local adapter keeps this node's rooms, the Redis adapter
// shares broadcasts and socket operations with the other nodes. Start runs
// when the namespace is created; if Redis does not answer, the namespace
// works on its own node and joins the others once Redis answers.
func Factory(rdb *redis.Client, opts Options) func(*sio.Namespace) sio.Adapter {
	return func(nsp *sio.Namespace) sio.Adapter {
		local := sio.NewLocalAdapter(nsp)
		o := opts
		o.Nsp = nsp.Name()
		bridge := &sioLocal{nsp: nsp, local: local}
		a := &sioAdapter{LocalAdapter: local, redis: New(rdb, bridge, o)}
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if err := a.redis.Start(ctx); err != nil {
			a.redis.log.Warn("namespace on this node only until redis answers", "err", err)
		}
		return a
	}
}

// sioAdapter is the namespace's sio.Adapter: room changes of local sockets
// and session recovery stay local (embedded LocalAdapter); the rest goes
// through Redis.
type sioAdapter struct {
	*sio.LocalAdapter
	redis *Adapter
}

var _ sio.Adapter = (*sioAdapter)(nil)

func (a *sioAdapter) log() *slog.Logger { return a.redis.log }

func (a *sioAdapter) Broadcast(p *sio.Packet, opts sio.BroadcastOptions) error {
	if opts.Flags.Local {
		return a.LocalAdapter.Broadcast(p, opts)
	}
	data, _ := p.Data.([]any)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	return a.redis.Broadcast(ctx, &Packet{Type: PacketEvent, Nsp: p.Nsp, Data: data}, fromSIO(opts))
}

func (a *sioAdapter) Sockets(ctx context.Context, opts sio.BroadcastOptions) ([]string, error) {
	infos, err := a.FetchSockets(ctx, opts)
	ids := make([]string, len(infos))
	for i, s := range infos {
		ids[i] = s.ID
	}
	return ids, err
}

func (a *sioAdapter) FetchSockets(ctx context.Context, opts sio.BroadcastOptions) ([]sio.SocketInfo, error) {
	if opts.Flags.Local {
		return a.LocalAdapter.FetchSockets(ctx, opts)
	}
	details, err := a.redis.FetchSockets(ctx, fromSIO(opts))
	out := make([]sio.SocketInfo, len(details))
	for i, d := range details {
		out[i] = toSocketInfo(d)
	}
	return out, err
}

func (a *sioAdapter) AddSockets(opts sio.BroadcastOptions, rooms []string) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := a.redis.AddSockets(ctx, fromSIO(opts), rooms); err != nil {
		a.log().Warn("socketsJoin reached this node only", "err", err)
	}
}

func (a *sioAdapter) DelSockets(opts sio.BroadcastOptions, rooms []string) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := a.redis.DelSockets(ctx, fromSIO(opts), rooms); err != nil {
		a.log().Warn("socketsLeave reached this node only", "err", err)
	}
}

func (a *sioAdapter) DisconnectSockets(opts sio.BroadcastOptions, close bool) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := a.redis.DisconnectSockets(ctx, fromSIO(opts), close); err != nil {
		a.log().Warn("disconnectSockets reached this node only", "err", err)
	}
}

func (a *sioAdapter) ServerSideEmit(args []any) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	return a.redis.ServerSideEmit(ctx, args)
}

func (a *sioAdapter) Close() {
	_ = a.redis.Close()
	a.LocalAdapter.Close()
}

// sioLocal is the Local the Redis adapter calls for this node's sockets.
type sioLocal struct {
	nsp   *sio.Namespace
	local *sio.LocalAdapter
}

func (l *sioLocal) Broadcast(p *Packet, opts BroadcastOptions) {
	o := toSIO(opts)
	o.Flags.Local = true
	if err := l.local.Broadcast(&sio.Packet{Type: sio.Event, Nsp: l.nsp.Name(), ID: sio.NoID, Data: p.Data}, o); err != nil {
		slog.Warn("redisadapter: deliver a remote broadcast", "err", err)
	}
}

// BroadcastWithAck: engine/sio has no acknowledged broadcasts yet, so the
// packet goes out without an ack id and this node reports no client to
// wait for, which lets the sender finish at once instead of timing out.
func (l *sioLocal) BroadcastWithAck(p *Packet, opts BroadcastOptions, clientCount func(int), _ func(any)) {
	l.Broadcast(p, opts)
	clientCount(0)
}

func (l *sioLocal) AddSockets(opts BroadcastOptions, rooms []string) {
	l.local.AddSockets(toSIO(opts), rooms)
}

func (l *sioLocal) DelSockets(opts BroadcastOptions, rooms []string) {
	l.local.DelSockets(toSIO(opts), rooms)
}

func (l *sioLocal) DisconnectSockets(opts BroadcastOptions, close bool) {
	l.local.DisconnectSockets(toSIO(opts), close)
}

func (l *sioLocal) FetchSockets(opts BroadcastOptions) []SocketDetails {
	infos, _ := l.local.FetchSockets(context.Background(), toSIO(opts))
	out := make([]SocketDetails, len(infos))
	for i, s := range infos {
		out[i] = fromSocketInfo(s)
	}
	return out
}

func (l *sioLocal) SocketIDs(rooms []string) []string {
	ids, _ := l.local.Sockets(context.Background(), sio.BroadcastOptions{Rooms: rooms})
	return ids
}

// Rooms is the union of the local sockets' rooms (LocalAdapter lists no
// rooms itself; only ALL_ROOMS requests, which are rare, ask).
func (l *sioLocal) Rooms() []string {
	ids, _ := l.local.Sockets(context.Background(), sio.BroadcastOptions{})
	var out []string
	for _, id := range ids {
		for _, r := range l.local.SocketRooms(id) {
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	return out
}

func (l *sioLocal) HasRoom(room string) bool { return l.local.HasRoom(room) }

// ServerSideEmit: engine/sio's listeners take no ack, so a request for one
// goes unanswered (the sender times out, as with a Node listener that
// never calls back).
func (l *sioLocal) ServerSideEmit(args []any, _ func(any)) {
	l.nsp.HandleServerSideEmit(args)
}

func fromSIO(o sio.BroadcastOptions) BroadcastOptions {
	return BroadcastOptions{Rooms: o.Rooms, Except: o.Except, Flags: Flags{Local: o.Flags.Local, Volatile: o.Flags.Volatile}}
}

func toSIO(o BroadcastOptions) sio.BroadcastOptions {
	return sio.BroadcastOptions{Rooms: o.Rooms, Except: o.Except, Flags: sio.BroadcastFlags{Local: o.Flags.Local, Volatile: o.Flags.Volatile}}
}

func fromSocketInfo(s sio.SocketInfo) SocketDetails {
	d := SocketDetails{ID: s.ID, Rooms: s.Rooms, Data: s.Data}
	if hs := s.Handshake; hs != nil {
		headers := map[string]any{}
		for k, v := range hs.Headers {
			headers[strings.ToLower(k)] = v[0] // as Node reports them
		}
		query := map[string]any{}
		for k, v := range hs.Query {
			query[k] = v[0]
		}
		d.Handshake = Handshake{Headers: headers, Query: query, Address: hs.Address, Secure: hs.Secure, URL: hs.URL,
			Time: hs.Time.UTC().Format(time.RFC1123), Issued: hs.Time.UnixMilli()}
	}
	return d
}

func toSocketInfo(d SocketDetails) sio.SocketInfo {
	hs := &sio.Handshake{Headers: http.Header{}, Query: url.Values{}, Address: d.Handshake.Address,
		Secure: d.Handshake.Secure, URL: d.Handshake.URL, Time: time.UnixMilli(d.Handshake.Issued)}
	for k, v := range d.Handshake.Headers {
		if s, ok := v.(string); ok {
			hs.Headers.Set(k, s)
		}
	}
	for k, v := range d.Handshake.Query {
		if s, ok := v.(string); ok {
			hs.Query.Set(k, s)
		}
	}
	return sio.SocketInfo{ID: d.ID, Rooms: d.Rooms, Data: d.Data, Handshake: hs}
}
