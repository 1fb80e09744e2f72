package redisadapter

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/engine/eio"
	"github.com/parley-chat/parley/engine/sio"
	"github.com/parley-chat/parley/internal/testenv"
)

// startSIO runs a Parley Socket.IO server on Redis whose sockets join the
// rooms of their "rooms" query parameter (comma-separated).
func startSIO(t *testing.T, redisURL string) (*sio.Server, string) {
	t.Helper()
	srv := sio.NewServer(sio.Options{
		Engine:  eio.Options{PingInterval: 25 * time.Second, PingTimeout: 20 * time.Second},
		Adapter: Factory(testenv.RedisClient(t, redisURL), Options{}),
	})
	srv.Sockets().OnConnection(func(s *sio.Socket) {
		if rooms := s.Handshake().Query.Get("rooms"); rooms != "" {
			s.Join(strings.Split(rooms, ",")...)
		}
	})
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
	})
	return srv, hs.URL
}

// TestSIOClusterWithNode: Parley's engine on the Redis adapter, a Node.js
// Socket.IO server with @socket.io/redis-adapter and the npm emitter share
// one cluster; real socket.io-clients on both servers see each other's
// broadcasts, binary intact, and cross-node room changes and disconnects.
func TestSIOClusterWithNode(t *testing.T) {
	redis := testenv.StartRedis(t)
	srv, url := startSIO(t, redis.URL)
	parleyClient := startNodeScript(t, "client.mjs", "URL="+url, "QUERY=rooms=user:1,chat:1")
	parleySID := parleyClient.ready["sid"].(string)
	node := startNodeServer(t, redis.URL, "chat:1")

	// Emitter to one room, with binary: reaches the Parley client.
	runEmitter(t, redis.URL, []map[string]any{
		{"op": "emit", "to": []string{"user:1"}, "event": "notice", "args": []any{map[string]any{"n": 1}, bin([]byte{1, 2, 3})}},
	})
	if got := parleyClient.expect(t, "client"); !reflect.DeepEqual(got, map[string]any{
		"event": "notice", "args": []any{map[string]any{"n": float64(1)}, map[string]any{"$bin": "AQID"}},
	}) {
		t.Fatalf("parley client got %v", got)
	}

	// Parley broadcasts to chat:1: both clients get it.
	if err := srv.Sockets().To("chat:1").Emit("message:new", map[string]any{"text": "hi"}, []byte{9}); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"event": "message:new", "args": []any{map[string]any{"text": "hi"}, map[string]any{"$bin": "CQ=="}}}
	for name, c := range map[string]*nodeServer{"parley": parleyClient, "node": node} {
		if got := c.expect(t, "client"); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s client got %v, want %v", name, got, want)
		}
	}

	// Node broadcasts to chat:1 except user:1: not the Parley client; then
	// to everyone: the Parley client's next event is that one.
	node.send(t, map[string]any{"cmd": "broadcast", "to": []string{"chat:1"}, "except": []string{"user:1"}, "event": "skip", "args": []any{}})
	node.expectEach(t, "sent", "client")
	node.send(t, map[string]any{"cmd": "broadcast", "event": "all", "args": []any{"x"}})
	node.expectEach(t, "sent", "client")
	if got := parleyClient.expect(t, "client"); got["event"] != "all" {
		t.Fatalf("parley client got %v, want only the namespace-wide event", got)
	}

	// Node fetches chat:1's sockets: its own and Parley's.
	node.send(t, map[string]any{"cmd": "fetch", "to": []string{"chat:1"}})
	var ids []string
	for _, s := range node.expect(t, "fetched")["fetched"].([]any) {
		ids = append(ids, s.(map[string]any)["id"].(string))
	}
	if !slices.Contains(ids, parleySID) || len(ids) != 2 {
		t.Fatalf("node fetched %v, want its socket and %s", ids, parleySID)
	}
	// And Parley fetches Node's.
	infos, err := srv.Sockets().To("chat:1").FetchSockets(context.Background())
	if err != nil || len(infos) != 2 {
		t.Fatalf("parley fetched %+v, %v", infos, err)
	}

	// Node makes user:1 join chat:2; the emitter's chat:2 event then
	// reaches the Parley client.
	node.send(t, map[string]any{"cmd": "join", "to": []string{"user:1"}, "rooms": []string{"chat:2"}})
	node.expect(t, "joined")
	runEmitter(t, redis.URL, []map[string]any{{"op": "emit", "to": []string{"chat:2"}, "event": "joined", "args": []any{}}})
	if got := parleyClient.expect(t, "client"); got["event"] != "joined" {
		t.Fatalf("parley client got %v", got)
	}

	// A disconnect from elsewhere ends the Parley socket as the server's.
	runEmitter(t, redis.URL, []map[string]any{{"op": "disconnectSockets", "to": []string{"user:1"}, "close": false}})
	if got := parleyClient.expect(t, "clientDisconnect"); got["clientDisconnect"] != "io server disconnect" {
		t.Fatalf("parley client: %v", got)
	}
}

// TestSIOTwoParleyNodes: two Parley servers on one Redis, a real client on
// each, behave as one: room broadcasts either way, rooms joined from the
// other node, fetches and disconnects across nodes.
func TestSIOTwoParleyNodes(t *testing.T) {
	redis := testenv.StartRedis(t)
	srv1, url1 := startSIO(t, redis.URL)
	_, url2 := startSIO(t, redis.URL)
	c1 := startNodeScript(t, "client.mjs", "URL="+url1, "QUERY=rooms=user:1,chat:1")
	c2 := startNodeScript(t, "client.mjs", "URL="+url2, "QUERY=rooms=user:2,chat:1")

	// Several rooms with except, from node 1: only node 2's client.
	if err := srv1.Sockets().To("chat:1", "chat:9").Except("user:1").Emit("typing", map[string]any{"isTyping": true}); err != nil {
		t.Fatal(err)
	}
	if got := c2.expect(t, "client"); got["event"] != "typing" {
		t.Fatalf("client 2 got %v", got)
	}
	// Node 1 moves user:2's sockets (on node 2) into chat:2, then emits
	// there at once.
	srv1.Sockets().In("user:2").SocketsJoin("chat:2")
	infos, err := srv1.Sockets().In("chat:2").FetchSockets(context.Background())
	if err != nil || len(infos) != 1 || infos[0].ID != c2.ready["sid"] {
		t.Fatalf("chat:2 holds %+v (%v), want client 2's socket", infos, err)
	}
	if err := srv1.Sockets().To("chat:2").Emit("chat:new", map[string]any{"id": "2"}); err != nil {
		t.Fatal(err)
	}
	if got := c2.expect(t, "client"); got["event"] != "chat:new" {
		t.Fatalf("client 2 got %v", got)
	}
	// A namespace-wide event reaches both; client 1 has seen nothing else.
	if err := srv1.Sockets().Emit("all", 1); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*nodeServer{c1, c2} {
		if got := c.expect(t, "client"); got["event"] != "all" {
			t.Fatalf("got %v, want the namespace-wide event", got)
		}
	}
	// Node 1 disconnects the session on node 2.
	srv1.Sockets().In("user:2").DisconnectSockets(false)
	if got := c2.expect(t, "clientDisconnect"); got["clientDisconnect"] != "io server disconnect" {
		t.Fatalf("client 2: %v", got)
	}
}

// TestSIOPollingBehindNginx: long-polling clients through a real nginx with
// ip_hash in front of two Parley nodes: each client's requests stay on one
// node, and broadcasts cross between the nodes.
func TestSIOPollingBehindNginx(t *testing.T) {
	redis := testenv.StartRedis(t)
	var nodes []*sio.Server
	var upstreams []string
	for range 2 {
		srv, url := startSIO(t, redis.URL)
		nodes = append(nodes, srv)
		upstreams = append(upstreams, strings.TrimPrefix(url, "http://"))
	}
	ng := testenv.StartNginx(t, upstreams...)

	// Find a client /24 that nginx sends to each node: connect from it and
	// see which node holds the socket.
	clients := make([]*nodeServer, 2)
	for n := 1; n <= 16 && (clients[0] == nil || clients[1] == nil); n++ {
		c := startNodeScript(t, "client.mjs", "URL="+ng.URL, "TRANSPORT=polling",
			"LOCAL_ADDRESS="+testenv.ClientAddr(n), "QUERY=rooms=user:"+strconv.Itoa(n)+",chat:1")
		sid := c.ready["sid"].(string)
		for i, srv := range nodes {
			if srv.Sockets().Socket(sid) != nil && clients[i] == nil {
				clients[i] = c
				c.user = "user:" + strconv.Itoa(n)
			}
		}
	}
	if clients[0] == nil || clients[1] == nil {
		t.Fatal("sixteen client /24s did not reach both nodes through ip_hash")
	}

	// Node 1 to chat:1 except client 1's user: only client 2 (on node 2).
	if err := nodes[0].Sockets().To("chat:1").Except(clients[0].user).Emit("message:new", map[string]any{"seq": 1}); err != nil {
		t.Fatal(err)
	}
	if got := clients[1].expect(t, "client"); got["event"] != "message:new" {
		t.Fatalf("client on node 2 got %v", got)
	}
	// Node 2 to client 1's user: reaches it on node 1, over polling.
	if err := nodes[1].Sockets().To(clients[0].user).Emit("presence", map[string]any{"online": true}); err != nil {
		t.Fatal(err)
	}
	if got := clients[0].expect(t, "client"); got["event"] != "presence" {
		t.Fatalf("client on node 1 got %v (the excepted event must not arrive)", got)
	}
}
