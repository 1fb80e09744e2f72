// Package testenv brings up the real services tests talk to: Redis and a
// MongoDB wire-protocol server. It is imported only from _test files.
package testenv

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parley-chat/parley/internal/redisconn"
)

var (
	sharedRedisOnce sync.Once
	sharedRedisURL  string
	sharedRedisErr  error
)

// RedisURL returns REDIS_URL when set, else the URL of a redis-server this
// test process starts once on a free loopback port (killed by the kernel when
// the test process exits: Pdeathsig).
func RedisURL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	sharedRedisOnce.Do(func() {
		var r *Redis
		r, sharedRedisErr = startRedis()
		if r != nil {
			sharedRedisURL = r.URL
		}
	})
	if sharedRedisErr != nil {
		t.Fatalf("testenv: no REDIS_URL and cannot start redis-server: %v", sharedRedisErr)
	}
	return sharedRedisURL
}

// Redis is a private redis-server owned by one test, for tests that flush or
// stop it.
type Redis struct {
	URL  string
	Addr string
	cmd  *exec.Cmd
	once sync.Once
}

// StartRedis starts a private redis-server for t and stops it at cleanup.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	r, err := startRedis()
	if err != nil {
		t.Fatalf("testenv: start redis-server: %v", err)
	}
	t.Cleanup(r.Stop)
	return r
}

// Stop ends the server; a stopped server refuses connections at once.
func (r *Redis) Stop() {
	r.once.Do(func() {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
	})
}

func startRedis() (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not in PATH (go tool task test installs it): %w", err)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	return startRedisOn(bin, port)
}

// startRedisOn starts redis-server on port and waits until it listens.
func startRedisOn(bin string, port int) (*Redis, error) {
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning")
	cmd.Dir = os.TempDir()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	go func() { // drain so the server never blocks on its log
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			_ = strings.TrimSpace(sc.Text())
		}
	}()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	r := &Redis{URL: "redis://" + addr + "/0", Addr: addr, cmd: cmd}
	if err := waitTCP(addr, 10*time.Second); err != nil {
		r.Stop()
		return nil, err
	}
	return r, nil
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitTCP polls until addr accepts a connection: the server announces
// readiness only by listening.
func waitTCP(addr string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not start listening: %w", addr, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

var quietRedis sync.Once

// discardRedisLog silences go-redis's own log: tests stop Redis on purpose,
// and every refused dial would be printed.
type discardRedisLog struct{}

func (discardRedisLog) Printf(context.Context, string, ...any) {}

// RedisClient opens a client on url with the server's own settings (fast
// failure when Redis is down), closed when t ends.
func RedisClient(t testing.TB, url string) *redis.Client {
	t.Helper()
	quietRedis.Do(func() { redis.SetLogger(discardRedisLog{}) })
	rdb, err := redisconn.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}
