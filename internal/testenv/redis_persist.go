package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// PersistentRedis is a private redis-server whose data outlives it: Stop
// saves and shuts it down for real, Start brings it back on the same
// address with the data it had. Tests of stale cache entries coming back
// after an outage use it.
type PersistentRedis struct {
	URL, Addr string
	port      int
	dir       string
	cmd       *exec.Cmd
}

// StartPersistentRedis starts one for t; it is killed at cleanup.
func StartPersistentRedis(t testing.TB) *PersistentRedis {
	t.Helper()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	p := &PersistentRedis{URL: "redis://" + addr + "/0", Addr: addr, port: port, dir: t.TempDir()}
	p.Start(t)
	t.Cleanup(func() {
		if p.cmd != nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	return p
}

// Start runs the server (again), loading what the last Stop saved.
func (p *PersistentRedis) Start(t testing.TB) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(p.port), "--bind", "127.0.0.1",
		"--dir", p.dir, "--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no",
		"--daemonize", "no", "--loglevel", "warning")
	cmd.Dir = p.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd = cmd
	if err := waitTCP(p.Addr, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

// Stop saves the data set to disk and shuts the server down; clients are
// refused from then on.
func (p *PersistentRedis) Stop(t testing.TB) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr})
	defer rdb.Close()
	// SHUTDOWN SAVE never answers: the connection just closes.
	_ = rdb.ShutdownSave(context.Background()).Err()
	err := p.cmd.Wait()
	p.cmd = nil
	if _, statErr := os.Stat(p.dir + "/dump.rdb"); statErr != nil {
		t.Fatalf("testenv: redis-server did not save before stopping (%v): %v", err, statErr)
	}
	if c, err := net.DialTimeout("tcp", p.Addr, time.Second); err == nil {
		c.Close()
		t.Fatal(fmt.Errorf("testenv: %s still accepts connections after SHUTDOWN", p.Addr))
	}
}
