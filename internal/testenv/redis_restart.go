package testenv

import (
	"net"
	"os/exec"
	"strconv"
	"sync"
	"testing"
)

// Restart stops the server and starts a fresh, empty one on the same
// address, as a Redis restart looks to its clients: every connection drops
// and every subscription is gone until the client subscribes again.
func (r *Redis) Restart(t testing.TB) {
	t.Helper()
	r.Stop()
	_, portStr, err := net.SplitHostPort(r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := startRedisOn(bin, port)
	if err != nil {
		t.Fatalf("testenv: restart redis-server on %s: %v", r.Addr, err)
	}
	// Stop must end the new process now.
	r.cmd = fresh.cmd
	r.once = sync.Once{}
}

// RedisOutage is one way a client meets a Redis that goes away: restarted
// under a running client, or down when the client starts.
type RedisOutage struct {
	Name        string
	DownAtStart bool
}

// RedisOutages are the cases a client that must rejoin Redis by itself is
// tested against; Restart brings Redis (back) up in both.
var RedisOutages = []RedisOutage{{"redis restarts", false}, {"redis down at start", true}}

// Start starts a private Redis for the case: already stopped when the
// client is to find it down at start.
func (o RedisOutage) Start(t testing.TB) *Redis {
	t.Helper()
	r := StartRedis(t)
	if o.DownAtStart {
		r.Stop()
	}
	return r
}
