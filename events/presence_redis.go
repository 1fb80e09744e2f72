package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parley-chat/parley/internal/redisconn"
)

var _ Tracker = (*RedisTracker)(nil)

// RedisTracker is the Tracker of a cluster: a user is online while any node
// holds one of their connections. Each node beats a heartbeat; a node whose
// beats stop (killed without a goodbye) is reaped by the others within
// DeadAfter plus one Interval, and its users go offline unless connected
// elsewhere. Online answers from a local copy of the cluster's online set,
// kept current through pub/sub, because REST asks it for every user.
//
// Redis keys (P = Prefix, default "presence:"):
//   - P+"conns:"+uid  hash: node+"|"+connKey → node, one field a connection
//   - P+"node:"+node  hash: uid → that node's connection count (for reaping)
//   - P+"nodes"       sorted set: node → last heartbeat, Redis time in ms
//   - P+"online"      set of online users (seeds each node's copy)
//   - P+"changes"     channel: "1"+uid when a user comes online, "0"+uid when gone
//
// The scripts build key names at run time, so this needs one Redis (or one
// hash slot), not a Redis Cluster.
type RedisTracker struct {
	rdb  *redis.Client
	opts RedisTrackerOptions
	log  *slog.Logger

	mu     sync.RWMutex
	online map[string]struct{}
	// mine is this node's own connections, to register again if this node
	// was reaped while alive (a long Redis outage or stall).
	mine map[string]map[string]struct{}

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	started  atomic.Bool
	// joined is set once the node registered (Start, or a later beat when
	// Redis was down at Start).
	joined atomic.Bool
}

// RedisTrackerOptions configure a RedisTracker.
type RedisTrackerOptions struct {
	// NodeID names this node; default a random id. It must differ between
	// running nodes.
	NodeID string
	// Prefix of every key; default "presence:".
	Prefix string
	// Interval between heartbeats (and reaps); default 5 s.
	Interval time.Duration
	// DeadAfter is the silence after which a node is reaped; default 15 s.
	// DeadAfter + Interval must stay within the 30 s the contract allows.
	DeadAfter time.Duration
	// OnChange reports transitions this node discovers outside Connect and
	// Disconnect: users of a reaped node going offline (false), and users
	// of this node online again after it was wrongly reaped (true). Each is
	// reported on exactly one node; the caller announces them.
	OnChange func(userID string, online bool)
	Logger   *slog.Logger
}

// NewRedisTracker returns a tracker; Start registers the node.
func NewRedisTracker(rdb *redis.Client, opts RedisTrackerOptions) *RedisTracker {
	if opts.NodeID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		opts.NodeID = hex.EncodeToString(b[:])
	}
	if opts.Prefix == "" {
		opts.Prefix = "presence:"
	}
	if opts.Interval <= 0 {
		opts.Interval = 5 * time.Second
	}
	if opts.DeadAfter <= 0 {
		opts.DeadAfter = 15 * time.Second
	}
	if opts.OnChange == nil {
		opts.OnChange = func(string, bool) {}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &RedisTracker{
		rdb: rdb, opts: opts, log: opts.Logger.With("component", "presence", "node", opts.NodeID),
		online: map[string]struct{}{}, mine: map[string]map[string]struct{}{},
		stop: make(chan struct{}), done: make(chan struct{}),
	}
}

// NodeID is this node's name in the cluster.
func (t *RedisTracker) NodeID() string { return t.opts.NodeID }

func (t *RedisTracker) key(parts ...string) string {
	k := t.opts.Prefix
	for _, p := range parts {
		k += p
	}
	return k
}

var (
	// KEYS: conns:uid, node:node, online. ARGV: field, node, uid, channel.
	connectScript = redis.NewScript(`
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
if redis.call('HLEN', KEYS[1]) == 1 then
  redis.call('SADD', KEYS[3], ARGV[3])
  redis.call('PUBLISH', ARGV[4], '1' .. ARGV[3])
  return 1
end
return 0`)
	// Same keys and arguments as connectScript.
	disconnectScript = redis.NewScript(`
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('HINCRBY', KEYS[2], ARGV[3], -1) <= 0 then redis.call('HDEL', KEYS[2], ARGV[3]) end
if redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[3], ARGV[3])
  redis.call('PUBLISH', ARGV[4], '0' .. ARGV[3])
  return 1
end
return 0`)
	// KEYS: nodes. ARGV: node. Returns 1 when the node was not registered
	// (first beat, or reaped meanwhile). Redis's clock, so nodes' clocks
	// need not agree.
	heartbeatScript = redis.NewScript(`
local t = redis.call('TIME')
return redis.call('ZADD', KEYS[1], t[1] * 1000 + math.floor(t[2] / 1000), ARGV[1])`)
	// KEYS: nodes, online. ARGV: deadAfterMs, prefix, channel, node ("" =
	// every silent node; else that node, for a goodbye). Returns the users
	// that went offline.
	reapScript = redis.NewScript(`
local nodes
if ARGV[4] ~= '' then
  nodes = {ARGV[4]}
else
  local t = redis.call('TIME')
  local now = t[1] * 1000 + math.floor(t[2] / 1000)
  nodes = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
end
local gone = {}
for _, node in ipairs(nodes) do
  local nkey = ARGV[2] .. 'node:' .. node
  for _, uid in ipairs(redis.call('HKEYS', nkey)) do
    local ckey = ARGV[2] .. 'conns:' .. uid
    local fields = redis.call('HGETALL', ckey)
    for i = 1, #fields, 2 do
      if fields[i + 1] == node then redis.call('HDEL', ckey, fields[i]) end
    end
    if redis.call('HLEN', ckey) == 0 then
      redis.call('SREM', KEYS[2], uid)
      redis.call('PUBLISH', ARGV[3], '0' .. uid)
      table.insert(gone, uid)
    end
  end
  redis.call('DEL', nkey)
  redis.call('ZREM', KEYS[1], node)
end
return gone`)
)

func (t *RedisTracker) connArgs(userID, connKey string) ([]string, []any) {
	return []string{t.key("conns:", userID), t.key("node:", t.opts.NodeID), t.key("online")},
		[]any{t.opts.NodeID + "|" + connKey, t.opts.NodeID, userID, t.key("changes")}
}

func (t *RedisTracker) Connect(ctx context.Context, userID, connKey string) (bool, error) {
	t.mu.Lock()
	set := t.mine[userID]
	if set == nil {
		set = map[string]struct{}{}
		t.mine[userID] = set
	}
	set[connKey] = struct{}{}
	t.mu.Unlock()
	keys, args := t.connArgs(userID, connKey)
	first, err := connectScript.Run(ctx, t.rdb, keys, args...).Int()
	if err != nil {
		return false, fmt.Errorf("presence: connect: %w", err)
	}
	t.setOnline(userID, true)
	return first == 1, nil
}

func (t *RedisTracker) Disconnect(ctx context.Context, userID, connKey string) (bool, error) {
	t.mu.Lock()
	if set := t.mine[userID]; set != nil {
		delete(set, connKey)
		if len(set) == 0 {
			delete(t.mine, userID)
		}
	}
	t.mu.Unlock()
	keys, args := t.connArgs(userID, connKey)
	last, err := disconnectScript.Run(ctx, t.rdb, keys, args...).Int()
	if err != nil {
		return false, fmt.Errorf("presence: disconnect: %w", err)
	}
	if last == 1 {
		t.setOnline(userID, false)
	}
	return last == 1, nil
}

// Online answers from this node's copy of the cluster's online set.
func (t *RedisTracker) Online(userID string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	_, ok := t.online[userID]
	return ok
}

func (t *RedisTracker) setOnline(userID string, on bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if on {
		t.online[userID] = struct{}{}
	} else {
		delete(t.online, userID)
	}
}

// Start registers the node, loads the online set, and keeps both current
// until Close: heartbeats, reaps of silent nodes, and the changes channel
// (go-redis re-subscribes after a dropped link; the set is then reloaded,
// since changes published meanwhile were lost). An error means Redis did not
// answer; the tracker still runs and registers the node, with whatever
// connections it took meanwhile, at the first beat Redis answers.
func (t *RedisTracker) Start(ctx context.Context) error {
	ps := t.rdb.Subscribe(ctx, t.key("changes"))
	listening, err := redisconn.Listen(ctx, ps, 1, t.onChangeMessage, t.reloadAfterReconnect)
	if err == nil {
		err = t.join(ctx)
	}
	t.started.Store(true)
	go func() {
		<-t.stop
		_ = ps.Close()
		<-listening
	}()
	go t.loop()
	if err != nil {
		return fmt.Errorf("presence: start (retrying in the background): %w", err)
	}
	return nil
}

// join registers the node: first forgetting what an earlier process under
// the same NodeID left (it holds none of those connections; its heartbeat
// would keep them alive), then beating, registering this process's
// connections, and loading the online set.
func (t *RedisTracker) join(ctx context.Context) error {
	gone, err := t.reap(ctx, t.opts.NodeID)
	if err != nil {
		return err
	}
	for _, u := range gone {
		t.setOnline(u, false)
		t.opts.OnChange(u, false)
	}
	if err := t.beat(ctx); err != nil {
		return err
	}
	if err := t.rejoin(ctx); err != nil {
		return err
	}
	if err := t.reload(ctx); err != nil {
		return err
	}
	t.joined.Store(true)
	return nil
}

func (t *RedisTracker) reload(ctx context.Context) error {
	users, err := t.rdb.SMembers(ctx, t.key("online")).Result()
	if err != nil {
		return fmt.Errorf("presence: load online users: %w", err)
	}
	fresh := make(map[string]struct{}, len(users))
	for _, u := range users {
		fresh[u] = struct{}{}
	}
	t.mu.Lock()
	t.online = fresh
	t.mu.Unlock()
	return nil
}

// onChangeMessage applies another node's "1uid" / "0uid".
func (t *RedisTracker) onChangeMessage(m *redis.Message) {
	if len(m.Payload) < 2 {
		return
	}
	t.setOnline(m.Payload[1:], m.Payload[0] == '1')
}

// reloadAfterReconnect reloads the online set: changes published while
// the link was down were lost.
func (t *RedisTracker) reloadAfterReconnect() {
	ctx, cancel := context.WithTimeout(context.Background(), t.opts.Interval)
	defer cancel()
	if err := t.reload(ctx); err != nil {
		t.log.Warn("presence: reload after reconnect", "err", err)
	}
}

func (t *RedisTracker) loop() {
	defer close(t.done)
	tick := time.NewTicker(t.opts.Interval)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), t.opts.Interval)
		if err := t.tick(ctx); err != nil {
			t.log.Warn("presence: heartbeat", "err", err)
		}
		cancel()
	}
}

// tick beats, registers this node's connections again if it was reaped,
// and reaps silent nodes.
func (t *RedisTracker) tick(ctx context.Context) error {
	if !t.joined.Load() {
		return t.join(ctx)
	}
	rejoined, err := heartbeatScript.Run(ctx, t.rdb, []string{t.key("nodes")}, t.opts.NodeID).Int()
	if err != nil {
		return fmt.Errorf("presence: beat: %w", err)
	}
	if rejoined == 1 {
		t.log.Warn("presence: this node had been reaped; registering its connections again")
		if err := t.rejoin(ctx); err != nil {
			return err
		}
	}
	gone, err := t.reap(ctx, "")
	for _, u := range gone {
		// Before the pub/sub echo, so this node's answer agrees with
		// what it is about to announce.
		t.setOnline(u, false)
		t.opts.OnChange(u, false)
	}
	return err
}

func (t *RedisTracker) beat(ctx context.Context) error {
	if err := heartbeatScript.Run(ctx, t.rdb, []string{t.key("nodes")}, t.opts.NodeID).Err(); err != nil {
		return fmt.Errorf("presence: beat: %w", err)
	}
	return nil
}

func (t *RedisTracker) rejoin(ctx context.Context) error {
	t.mu.RLock()
	var pairs [][2]string
	for u, set := range t.mine {
		for k := range set {
			pairs = append(pairs, [2]string{u, k})
		}
	}
	t.mu.RUnlock()
	for _, p := range pairs {
		keys, args := t.connArgs(p[0], p[1])
		first, err := connectScript.Run(ctx, t.rdb, keys, args...).Int()
		if err != nil {
			return fmt.Errorf("presence: rejoin: %w", err)
		}
		if first == 1 {
			t.setOnline(p[0], true)
			t.opts.OnChange(p[0], true)
		}
	}
	return nil
}

func (t *RedisTracker) reap(ctx context.Context, node string) ([]string, error) {
	gone, err := reapScript.Run(ctx, t.rdb, []string{t.key("nodes"), t.key("online")},
		t.opts.DeadAfter.Milliseconds(), t.opts.Prefix, t.key("changes"), node).StringSlice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("presence: reap: %w", err)
	}
	return gone, nil
}

// Close stops the heartbeat and says goodbye: this node's remaining
// connections are removed at once and the users that leaves offline are
// returned, for the caller to announce.
func (t *RedisTracker) Close(ctx context.Context) ([]string, error) {
	if !t.halt() {
		return nil, nil
	}
	return t.reap(ctx, t.opts.NodeID)
}

// halt stops the heartbeat and the listener without a goodbye, as a killed
// node would; it reports whether this call stopped them.
func (t *RedisTracker) halt() bool {
	stopped := false
	t.stopOnce.Do(func() {
		close(t.stop)
		stopped = true
	})
	if stopped && t.started.Load() {
		<-t.done
	}
	return stopped
}
