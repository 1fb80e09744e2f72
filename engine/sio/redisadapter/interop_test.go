package redisadapter

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/testenv"
)

// nodeDir holds the npm packages the interop tests run (scripts/test-deps.sh
// installs them).
func nodeDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../../scripts/cluster")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); err != nil {
		t.Fatalf("%s has no node_modules: run `go tool task test` (or bash scripts/test-deps.sh) first", dir)
	}
	return dir
}

// bin marks binary values in the JSON exchanged with the Node scripts.
func bin(b []byte) map[string]any {
	return map[string]any{"$bin": base64.StdEncoding.EncodeToString(b)}
}

// startAdapter runs an adapter for local on the Redis at url.
func startAdapter(t *testing.T, url string, local Local) *Adapter {
	t.Helper()
	a := New(testenv.RedisClient(t, url), local, Options{RequestsTimeout: 3 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

// An adapter whose Redis restarts, or is down when it starts, subscribes
// by itself once Redis answers and receives what the emitter publishes.
func TestAdapterRejoinsRedis(t *testing.T) {
	for _, tt := range testenv.RedisOutages {
		t.Run(tt.Name, func(t *testing.T) {
			redis := tt.Start(t)
			local := newFakeLocal(map[string][]string{"s1": {"user:1"}})
			subscribed := make(chan struct{}, 1)
			a := New(testenv.RedisClient(t, redis.URL), local, Options{
				OnResubscribe: func() { subscribed <- struct{}{} },
				Logger:        slog.New(slog.DiscardHandler),
			})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := a.Start(ctx); (err != nil) != tt.DownAtStart {
				t.Fatalf("Start: %v", err)
			}
			t.Cleanup(func() { _ = a.Close() })

			redis.Restart(t)
			testenv.Receive(t, subscribed, "subscription once Redis is up")
			runEmitter(t, redis.URL, []map[string]any{{"op": "emit", "to": []string{"user:1"}, "event": "back", "args": []any{}}})
			if c := local.next(t); c.op != "broadcast" || c.packet.Data[0] != "back" {
				t.Fatalf("got %+v", c)
			}
		})
	}
}

// runEmitter runs the npm @socket.io/redis-emitter with ops and waits for it.
func runEmitter(t *testing.T, url string, ops []map[string]any) {
	t.Helper()
	b, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", "emit.mjs", string(b))
	cmd.Dir = nodeDir(t)
	cmd.Env = append(os.Environ(), "REDIS_URL="+url)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("emit.mjs: %v\n%s", err, out)
	}
}

// TestEmitterToAdapter: what the npm emitter publishes reaches this node's
// sockets exactly as sent: rooms, except, namespace-wide, binary intact,
// socketsJoin/Leave, disconnectSockets and serverSideEmit.
func TestEmitterToAdapter(t *testing.T) {
	redis := testenv.StartRedis(t)
	local := newFakeLocal(map[string][]string{"s1": {"user:42", "chat:7"}, "s2": {"user:43"}})
	a := New(testenv.RedisClient(t, redis.URL), local, Options{RoomChange: func(apply func()) {
		local.calls <- call{op: "roomChange"}
		apply()
	}})
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })

	payload := map[string]any{"text": "héllo", "seq": int64(3), "ratio": 1.5, "neg": int64(-70000), "big": int64(1) << 40,
		"ok": true, "none": nil, "list": []any{"a", int64(1)}, "nested": map[string]any{"k": "v"}}
	blob := []byte{0, 1, 2, 0xfe, 0xff}
	runEmitter(t, redis.URL, []map[string]any{
		// No socket here is in user:99: a single-room broadcast for it is skipped.
		{"op": "emit", "to": []string{"user:99"}, "event": "message:new", "args": []any{"skipped"}},
		{"op": "emit", "to": []string{"user:42"}, "event": "message:new", "args": []any{payload, bin(blob)}},
		{"op": "emit", "to": []string{"chat:7", "user:43"}, "except": []string{"user:42"}, "event": "typing", "args": []any{map[string]any{"isTyping": true}}},
		{"op": "emit", "event": "everyone", "args": []any{}},
		{"op": "socketsJoin", "to": []string{"user:42"}, "rooms": []string{"chat:8"}},
		{"op": "socketsLeave", "to": []string{"user:42"}, "rooms": []string{"chat:7"}},
		{"op": "disconnectSockets", "to": []string{"session:abc"}, "close": true},
		{"op": "serverSideEmit", "args": []any{"membership", map[string]any{"chatId": "7"}}},
	})

	c := local.next(t)
	if c.op != "broadcast" || c.packet.Type != PacketEvent || c.packet.Nsp != "/" {
		t.Fatalf("first call %+v, want the user:42 broadcast", c)
	}
	if want := []any{"message:new", payload, blob}; !reflect.DeepEqual(c.packet.Data, want) {
		t.Fatalf("data\n got %#v\nwant %#v", c.packet.Data, want)
	}
	if !slices.Equal(c.opts.Rooms, []string{"user:42"}) || len(c.opts.Except) != 0 || c.opts.Flags.Local {
		t.Fatalf("opts %+v", c.opts)
	}

	c = local.next(t)
	if c.op != "broadcast" || c.packet.Data[0] != "typing" || !slices.Equal(c.opts.Rooms, []string{"chat:7", "user:43"}) || !slices.Equal(c.opts.Except, []string{"user:42"}) {
		t.Fatalf("multi-room call %+v", c)
	}
	c = local.next(t)
	if c.op != "broadcast" || !reflect.DeepEqual(c.packet.Data, []any{"everyone"}) || len(c.opts.Rooms) != 0 {
		t.Fatalf("namespace-wide call %+v", c)
	}
	// Room changes run inside RoomChange.
	if c = local.next(t); c.op != "roomChange" {
		t.Fatalf("call %+v, want roomChange around socketsJoin", c)
	}
	c = local.next(t)
	if c.op != "addSockets" || !slices.Equal(c.opts.Rooms, []string{"user:42"}) || !slices.Equal(c.rooms, []string{"chat:8"}) {
		t.Fatalf("socketsJoin call %+v", c)
	}
	if c = local.next(t); c.op != "roomChange" {
		t.Fatalf("call %+v, want roomChange around socketsLeave", c)
	}
	c = local.next(t)
	if c.op != "delSockets" || !slices.Equal(c.rooms, []string{"chat:7"}) {
		t.Fatalf("socketsLeave call %+v", c)
	}
	c = local.next(t)
	if c.op != "disconnectSockets" || !c.close || !slices.Equal(c.opts.Rooms, []string{"session:abc"}) {
		t.Fatalf("disconnectSockets call %+v", c)
	}
	c = local.next(t)
	if c.op != "serverSideEmit" || !reflect.DeepEqual(c.args, []any{"membership", map[string]any{"chatId": "7"}}) {
		t.Fatalf("serverSideEmit call %+v", c)
	}
	if !local.HasRoom("chat:8") || local.HasRoom("chat:7") {
		t.Fatalf("rooms after join/leave: %v", local.Rooms())
	}
}

// nodeServer is a running Node.js script: node-server.mjs (a Socket.IO
// server with @socket.io/redis-adapter and one client of its own) or
// client.mjs (a socket.io-client).
type nodeServer struct {
	stdin io.WriteCloser
	lines chan map[string]any
	ready map[string]any
	// user is a test's note of whose client this is.
	user string
}

func startNodeServer(t *testing.T, url string, rooms ...string) *nodeServer {
	t.Helper()
	return startNodeScript(t, "node-server.mjs", "REDIS_URL="+url, "ROOMS="+strings.Join(rooms, ","))
}

// startNodeScript runs a script of scripts/cluster that says "ready" first
// and ends when its stdin closes.
func startNodeScript(t *testing.T, script string, env ...string) *nodeServer {
	t.Helper()
	cmd := exec.Command("node", script)
	cmd.Dir = nodeDir(t)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &nodeServer{stdin: stdin, lines: make(chan map[string]any, 64)}
	t.Cleanup(func() {
		_ = stdin.Close() // the script exits when stdin closes
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	go func() {
		defer close(n.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				n.lines <- m
			}
		}
	}()
	n.ready = n.expect(t, "ready")
	return n
}

// expect waits for the script's next line and requires it to carry key.
func (n *nodeServer) expect(t *testing.T, key string) map[string]any {
	t.Helper()
	select {
	case m, ok := <-n.lines:
		if !ok {
			t.Fatalf("the node script ended before %q", key)
		}
		v, ok := m[key].(map[string]any)
		if !ok {
			if _, present := m[key]; present {
				return m
			}
			t.Fatalf("the node script said %v, want %q", m, key)
		}
		return v
	case <-time.After(15 * time.Second):
		t.Fatalf("the node script did not say %q within 15 s", key)
		return nil
	}
}

// expectEach waits for one line carrying each key, in any order (a
// script's own client may print before the script reports a command done).
func (n *nodeServer) expectEach(t *testing.T, keys ...string) map[string]map[string]any {
	t.Helper()
	got := map[string]map[string]any{}
	for len(got) < len(keys) {
		select {
		case m, ok := <-n.lines:
			if !ok {
				t.Fatalf("the node script ended before saying %v", keys)
			}
			matched := false
			for _, k := range keys {
				if _, present := m[k]; present && got[k] == nil {
					got[k], matched = m, true
				}
			}
			if !matched {
				t.Fatalf("the node script said %v, want one of %v", m, keys)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("the node script did not say all of %v within 15 s", keys)
		}
	}
	return got
}

func (n *nodeServer) send(t *testing.T, cmd map[string]any) {
	t.Helper()
	b, _ := json.Marshal(cmd)
	if _, err := n.stdin.Write(append(b, '\n')); err != nil {
		t.Fatal(err)
	}
}

// TestAdapterWithNodeServer: a Parley node and a Node.js Socket.IO server
// with the npm Redis adapter share one cluster, both ways.
func TestAdapterWithNodeServer(t *testing.T) {
	redis := testenv.StartRedis(t)
	local := newFakeLocal(map[string][]string{"g1": {"chat:1", "user:1"}})
	local.ackArg = "go-ack"
	a := startAdapter(t, redis.URL, local)
	node := startNodeServer(t, redis.URL, "chat:1", "user:2")
	ctx := context.Background()

	t.Run("parley broadcast reaches the node client, binary intact", func(t *testing.T) {
		blob := []byte{0xde, 0xad, 0xbe, 0xef}
		p := &Packet{Type: PacketEvent, Data: []any{"message:new", struct {
			Text string `json:"text"`
			Seq  int    `json:"seq"`
		}{"hi", 4}, blob}}
		if err := a.Broadcast(ctx, p, BroadcastOptions{Rooms: []string{"chat:1"}}); err != nil {
			t.Fatal(err)
		}
		if c := local.next(t); c.op != "broadcast" {
			t.Fatalf("local delivery %+v", c)
		}
		got := node.expect(t, "client")
		want := map[string]any{"event": "message:new", "args": []any{map[string]any{"text": "hi", "seq": float64(4)}, map[string]any{"$bin": "3q2+7w=="}}}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("node client got %v, want %v", got, want)
		}
		// Several rooms with except: the node socket is in chat:1 and user:2.
		if err := a.Broadcast(ctx, &Packet{Type: PacketEvent, Data: []any{"typing", "skipped"}}, BroadcastOptions{Rooms: []string{"chat:1", "chat:9"}, Except: []string{"user:2"}}); err != nil {
			t.Fatal(err)
		}
		local.next(t)
		if err := a.Broadcast(ctx, &Packet{Type: PacketEvent, Data: []any{"all"}}, BroadcastOptions{}); err != nil {
			t.Fatal(err)
		}
		local.next(t)
		if got := node.expect(t, "client"); got["event"] != "all" {
			t.Fatalf("node client got %v, want the namespace-wide event (the excepted one must not arrive)", got)
		}
	})

	t.Run("node broadcast reaches parley", func(t *testing.T) {
		node.send(t, map[string]any{"cmd": "broadcast", "to": []string{"user:1"}, "event": "presence", "args": []any{map[string]any{"online": true}, bin([]byte("x"))}})
		node.expect(t, "sent")
		c := local.next(t)
		if c.op != "broadcast" || !reflect.DeepEqual(c.packet.Data, []any{"presence", map[string]any{"online": true}, []byte("x")}) || !slices.Equal(c.opts.Rooms, []string{"user:1"}) {
			t.Fatalf("parley got %+v", c)
		}
	})

	t.Run("fetchSockets across nodes", func(t *testing.T) {
		got, err := a.FetchSockets(ctx, BroadcastOptions{Rooms: []string{"chat:1"}})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range got {
			ids = append(ids, s.ID)
		}
		slices.Sort(ids)
		want := []string{"g1", node.ready["sid"].(string)}
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			t.Fatalf("fetched %v, want %v", ids, want)
		}
		node.send(t, map[string]any{"cmd": "fetch", "to": []string{"chat:1"}})
		fetched := node.expect(t, "fetched")["fetched"].([]any)
		if len(fetched) != 2 {
			t.Fatalf("node fetched %v, want its socket and g1", fetched)
		}
	})

	t.Run("socketsJoin from node reaches parley sockets", func(t *testing.T) {
		node.send(t, map[string]any{"cmd": "join", "to": []string{"user:1"}, "rooms": []string{"chat:2"}})
		node.expect(t, "joined")
		if c := local.next(t); c.op != "addSockets" || !slices.Equal(c.rooms, []string{"chat:2"}) {
			t.Fatalf("parley got %+v", c)
		}
		rooms, err := a.AllRooms(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(rooms, "chat:2") || !slices.Contains(rooms, "user:2") {
			t.Fatalf("all rooms %v lack a node's room", rooms)
		}
	})

	t.Run("socketsJoin from parley: local at once, then node's sockets", func(t *testing.T) {
		if err := a.AddSockets(ctx, BroadcastOptions{Rooms: []string{"user:1", "user:2"}}, []string{"chat:5"}); err != nil {
			t.Fatal(err)
		}
		// Applied before AddSockets returned, and only once.
		select {
		case c := <-local.calls:
			if c.op != "addSockets" || !slices.Equal(c.rooms, []string{"chat:5"}) {
				t.Fatalf("parley got %+v", c)
			}
		default:
			t.Fatal("AddSockets returned before this node's sockets joined")
		}
		// Redis delivers the join before this broadcast to the Node server.
		if err := a.Broadcast(ctx, &Packet{Type: PacketEvent, Data: []any{"after-join"}}, BroadcastOptions{Rooms: []string{"chat:5"}}); err != nil {
			t.Fatal(err)
		}
		if c := local.next(t); c.op != "broadcast" {
			t.Fatalf("parley got %+v, want the broadcast (the join's echo must be skipped)", c)
		}
		if got := node.expect(t, "client"); got["event"] != "after-join" {
			t.Fatalf("node client got %v", got)
		}
		node.send(t, map[string]any{"cmd": "fetch", "to": []string{"chat:5"}})
		if got := node.expect(t, "fetched")["fetched"].([]any); len(got) != 2 {
			t.Fatalf("chat:5 holds %v, want g1 and the node's socket", got)
		}
	})

	t.Run("server-side emits both ways, with acks", func(t *testing.T) {
		if err := a.ServerSideEmit(ctx, []any{"hello", "from-go"}); err != nil {
			t.Fatal(err)
		}
		if got := node.expect(t, "serverSideEmit"); !reflect.DeepEqual(got["args"], []any{"from-go"}) {
			t.Fatalf("node got %v", got)
		}
		answers, err := a.ServerSideEmitWithAck(ctx, []any{"ask", "q1"})
		if err != nil {
			t.Fatal(err)
		}
		node.expect(t, "serverSideEmit")
		if !reflect.DeepEqual(answers, []any{map[string]any{"from": "node", "got": "q1"}}) {
			t.Fatalf("answers %v", answers)
		}
		node.send(t, map[string]any{"cmd": "serverSideEmitWithAck", "timeout": 3000, "args": []any{"ask", "q2"}})
		if c := local.next(t); c.op != "serverSideEmit" || !reflect.DeepEqual(c.args, []any{"ask", "q2"}) {
			t.Fatalf("parley got %+v", c)
		}
		if got := node.expect(t, "answers"); !reflect.DeepEqual(got["answers"], []any{map[string]any{"from": "go", "got": "q2"}}) {
			t.Fatalf("node answers %v", got)
		}
	})

	t.Run("node broadcast with acks counts parley's clients", func(t *testing.T) {
		node.send(t, map[string]any{"cmd": "broadcastWithAck", "to": []string{"chat:1"}, "timeout": 3000, "event": "ping", "args": []any{int64(1)}})
		if c := local.next(t); c.op != "broadcastWithAck" {
			t.Fatalf("parley got %+v", c)
		}
		node.expect(t, "client")
		got := node.expect(t, "acks")["acks"].([]any)
		if len(got) != 2 || !slices.ContainsFunc(got, func(v any) bool { return v == "go-ack" }) {
			t.Fatalf("acks %v, want the node client's and parley's", got)
		}
	})

	t.Run("parley broadcast with acks collects node's", func(t *testing.T) {
		counts := make(chan int, 4)
		acks := make(chan any, 4)
		id := int64(7)
		err := a.BroadcastWithAck(ctx, &Packet{Type: PacketEvent, ID: &id, Data: []any{"ping", int64(2)}},
			BroadcastOptions{Rooms: []string{"chat:1"}, Flags: Flags{Timeout: 3000}},
			func(n int) { counts <- n }, func(v any) { acks <- v })
		if err != nil {
			t.Fatal(err)
		}
		local.next(t)
		node.expect(t, "client")
		var got []int
		var answers []any
		for len(got) < 2 || len(answers) < 2 {
			select {
			case n := <-counts:
				got = append(got, n)
			case v := <-acks:
				answers = append(answers, v)
			case <-time.After(10 * time.Second):
				t.Fatalf("counts %v, acks %v: not all arrived", got, answers)
			}
		}
		if !slices.Equal(got, []int{1, 1}) || !slices.ContainsFunc(answers, func(v any) bool {
			m, ok := v.(map[string]any)
			return ok && m["from"] == "node-client"
		}) {
			t.Fatalf("counts %v, acks %v", got, answers)
		}
	})
}
