package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// Nginx is a private nginx (the Debian package) in front of several
// Parley nodes, configured as docs/deploy.md tells operators to: ip_hash
// stickiness for long-polling, WebSocket upgrades passed through, read
// timeouts longer than Engine.IO's heartbeat.
type Nginx struct {
	URL  string
	Addr string
}

var nginxConf = template.Must(template.New("nginx").Parse(`
daemon off;
master_process off;
worker_processes 1;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path {{.Dir}}/body;
    proxy_temp_path {{.Dir}}/proxy;
    fastcgi_temp_path {{.Dir}}/fastcgi;
    uwsgi_temp_path {{.Dir}}/uwsgi;
    scgi_temp_path {{.Dir}}/scgi;

    upstream parley {
        ip_hash;
{{- range .Upstreams}}
        server {{.}};
{{- end}}
    }

    map $http_upgrade $connection_upgrade {
        default upgrade;
        ''      close;
    }

    server {
        listen {{.Addr}};
        client_max_body_size 26m;
        location / {
            proxy_pass http://parley;
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 60s;
            proxy_buffering off;
        }
    }
}
`))

// StartNginx runs nginx on a free loopback port in front of upstreams
// (host:port each) until t ends. nginx's ip_hash keys on the first three
// octets of the client's address: clients that must land on different
// nodes connect from different /24s of 127.0.0.0/8 (ClientAddr).
func StartNginx(t testing.TB, upstreams ...string) *Nginx {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx" // Debian installs it outside a user's PATH
		if _, statErr := os.Stat(bin); statErr != nil {
			t.Fatalf("testenv: nginx not installed (go tool task test installs it): %v", err)
		}
	}
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var conf bytes.Buffer
	if err := nginxConf.Execute(&conf, map[string]any{"Dir": dir, "Addr": addr, "Upstreams": upstreams}); err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", confPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: start nginx: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	if err := waitTCP(addr, 10*time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		t.Fatalf("testenv: nginx: %v\n%s%s", err, stderr.String(), log)
	}
	return &Nginx{URL: "http://" + addr, Addr: addr}
}

// ClientAddr is a loopback source address in the /24 numbered n (1..254),
// for clients that ip_hash must tell apart.
func ClientAddr(n int) string {
	if n < 1 || n > 254 {
		panic(fmt.Sprintf("testenv: client /24 %d out of 1..254", n))
	}
	return strings.Join([]string{"127", strconv.Itoa(n), "0", "1"}, ".")
}
