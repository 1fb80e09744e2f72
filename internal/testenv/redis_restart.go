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
