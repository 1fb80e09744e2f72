package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

// parleyBinary builds the server once per test process, for tests that must
// kill it as a separate process.
func parleyBinary(t *testing.T) string {
	t.Helper()
	binaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "parley-bin-")
		if err != nil {
			binaryErr = err
			return
		}
		binaryPath = filepath.Join(dir, "parley")
		out, err := exec.Command("go", "build", "-o", binaryPath, ".").CombinedOutput()
		if err != nil {
			binaryErr = err
			t.Logf("go build: %s", out)
		}
	})
	if binaryErr != nil {
		t.Fatalf("build parley: %v", binaryErr)
	}
	return binaryPath
}

type process struct {
	cmd  *exec.Cmd
	URL  string
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done
}

var listeningRe = regexp.MustCompile(`msg="parley listening" addr=(\S+)`)

// startProcess runs the binary with the embedded defaults in dataDir and
// waits for its "listening" line; env overrides the defaults.
func startProcess(t *testing.T, dataDir string, env ...string) *process {
	t.Helper()
	cmd := exec.Command(parleyBinary(t))
	cmd.Dir = dataDir
	cmd.Env = append(os.Environ(), "HOST=127.0.0.1", "PORT=0", "DATA_DIR="+dataDir, "BCRYPT_COST=4",
		"LOG_LEVEL=info", "REDIS_URL=", "MONGO_URI=", "JWT_SECRET=")
	cmd.Env = append(append(cmd.Env, noFloodLimits...), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listeningRe.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-p.done })
	select {
	case a := <-addr:
		p.URL = "http://" + a
	case <-p.done:
		t.Fatalf("parley exited at start: %v", p.err)
	case <-time.After(30 * time.Second):
		t.Fatal("parley did not start listening within 30s")
	}
	return p
}

// A kill -9 loses nothing that was acknowledged: users, sessions (with the
// secret kept in DATA_DIR) and messages are all there after a restart, and
// the SQLite file opens cleanly.
func TestKill9KeepsAcknowledgedWrites(t *testing.T) {
	dir := t.TempDir()
	p := startProcess(t, dir)
	srv := &testServer{URL: p.URL}
	a, b := signup(t, srv, "crash"), signup(t, srv, "crash2")
	c := call(t, "POST", srv.URL+"/api/chats", a.Token, map[string]any{"type": "direct", "userId": b.ID})
	chatID := c.Body["id"].(string)
	for i := 0; i < 20; i++ {
		if r := call(t, "POST", srv.URL+"/api/chats/"+chatID+"/messages", a.Token, map[string]any{"text": "before the crash"}); r.Status != 201 {
			t.Fatalf("send: %d %s", r.Status, r.Raw)
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done

	srv.URL = startProcess(t, dir).URL
	if r := call(t, "GET", srv.URL+"/api/me", a.Token, nil); r.Status != 200 {
		t.Fatalf("token after kill -9: %d %s", r.Status, r.Raw)
	}
	r := call(t, "GET", srv.URL+"/api/chats/"+chatID+"/messages?limit=100", b.Token, nil)
	if msgs, _ := r.Body["messages"].([]any); r.Status != 200 || len(msgs) != 20 {
		t.Fatalf("history after kill -9: %d %s", r.Status, r.Raw)
	}
	if r := call(t, "POST", srv.URL+"/api/chats/"+chatID+"/messages", a.Token, map[string]any{"text": "after"}); r.Status != 201 || r.Body["seq"] != float64(21) {
		t.Fatalf("send after restart: %d %s", r.Status, r.Raw)
	}
}

// SIGTERM lets an upload in flight finish, then the process exits cleanly.
func TestSIGTERMFinishesInFlightRequests(t *testing.T) {
	dir := t.TempDir()
	p := startProcess(t, dir)
	a := signup(t, &testServer{URL: p.URL}, "term")

	pr, pw := io.Pipe()
	req, err := http.NewRequest("POST", p.URL+"/api/files", pr)
	if err != nil {
		t.Fatal(err)
	}
	const boundary = "parleyboundary"
	req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
	req.Header.Set("Authorization", "Bearer "+a.Token)
	type result struct {
		status int
		err    error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			res <- result{err: err}
			return
		}
		resp.Body.Close()
		res <- result{status: resp.StatusCode}
	}()
	head := "--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.txt\"\r\nContent-Type: text/plain\r\n\r\n"
	// 16 MiB cannot all sit in loopback socket buffers: once this write
	// returns, the server's handler is reading the body.
	if _, err := pw.Write([]byte(head + strings.Repeat("a", 16<<20))); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, err := pw.Write([]byte(strings.Repeat("b", 64<<10) + "\r\n--" + boundary + "--\r\n")); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	r := <-res
	if r.err != nil || r.status != http.StatusCreated {
		t.Fatalf("upload in flight at SIGTERM: status %d, err %v", r.status, r.err)
	}
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("exit after SIGTERM: %v", p.err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("parley did not exit within 15s of SIGTERM")
	}
}
