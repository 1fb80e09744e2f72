package testenv

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// NodeDir is scripts/cluster, where the Node.js peers of the cluster tests
// live with their npm packages (scripts/test-deps.sh installs them).
func NodeDir(t testing.TB) string {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(here), "..", "..", "scripts", "cluster")
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); err != nil {
		t.Fatalf("%s has no node_modules: run `go tool task test` (or bash scripts/test-deps.sh) first", dir)
	}
	return dir
}

// RunEmitter runs the npm @socket.io/redis-emitter with ops and waits for it.
func RunEmitter(t *testing.T, url string, ops []map[string]any) {
	t.Helper()
	b, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", "emit.mjs", string(b))
	cmd.Dir = NodeDir(t)
	cmd.Env = append(os.Environ(), "REDIS_URL="+url)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("emit.mjs: %v\n%s", err, out)
	}
}

// NodeScript is a running Node.js script: node-server.mjs (a Socket.IO
// server with @socket.io/redis-adapter and one client of its own) or
// client.mjs (a socket.io-client).
type NodeScript struct {
	stdin io.WriteCloser
	lines chan map[string]any
	// Ready is what the script said first.
	Ready map[string]any
	// User is a test's note of whose client this is.
	User string
}

// StartNodeServer runs node-server.mjs on the Redis at url; its own client
// joins rooms.
func StartNodeServer(t *testing.T, url string, rooms ...string) *NodeScript {
	t.Helper()
	return StartNodeScript(t, "node-server.mjs", "REDIS_URL="+url, "ROOMS="+strings.Join(rooms, ","))
}

// StartNodeScript runs a script of scripts/cluster that says "ready" first
// and ends when its stdin closes.
func StartNodeScript(t *testing.T, script string, env ...string) *NodeScript {
	t.Helper()
	cmd := exec.Command("node", script)
	cmd.Dir = NodeDir(t)
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
	n := &NodeScript{stdin: stdin, lines: make(chan map[string]any, 64)}
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
	n.Ready = n.Expect(t, "ready")
	return n
}

// Expect waits for the script's next line and requires it to carry key.
func (n *NodeScript) Expect(t *testing.T, key string) map[string]any {
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

// ExpectEach waits for one line carrying each key, in any order (a
// script's own client may print before the script reports a command done).
func (n *NodeScript) ExpectEach(t *testing.T, keys ...string) map[string]map[string]any {
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

func (n *NodeScript) Send(t *testing.T, cmd map[string]any) {
	t.Helper()
	b, _ := json.Marshal(cmd)
	if _, err := n.stdin.Write(append(b, '\n')); err != nil {
		t.Fatal(err)
	}
}
