package web

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

var fakeSocketServer = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Socket-Server", "yes")
	w.WriteHeader(http.StatusTeapot)
})

// staticRouter mounts the static routes beside a stand-in for the Socket.IO
// server at /socket.io/*, registered first, as the app will have it.
func staticRouter() http.Handler {
	r := chi.NewRouter()
	r.Handle("/socket.io/*", fakeSocketServer)
	StaticRoutes(r)
	return r
}

func get(t *testing.T, h http.Handler, method, path string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestStaticAssets(t *testing.T) {
	h := staticRouter()
	cases := []struct {
		path, contentType, cache string
	}{
		{"/", "text/html; charset=utf-8", "no-cache"},
		{"/app.js", "application/javascript; charset=utf-8", "no-cache"},
		{"/app.css", "text/css; charset=utf-8", "no-cache"},
		{"/socket.io/socket.io.js", "application/javascript; charset=utf-8", "public, max-age=86400"},
		{"/socket.io/socket.io.min.js", "application/javascript; charset=utf-8", "public, max-age=86400"},
		{"/socket.io/socket.io.js.map", "application/json", "public, max-age=86400"},
		{"/socket.io/socket.io.min.js.map", "application/json", "public, max-age=86400"},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			res := get(t, h, http.MethodGet, c.path, nil)
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			if got := res.Header.Get("Content-Type"); got != c.contentType {
				t.Errorf("Content-Type %q, want %q", got, c.contentType)
			}
			if got := res.Header.Get("Cache-Control"); got != c.cache {
				t.Errorf("Cache-Control %q, want %q", got, c.cache)
			}
			if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}
			if len(body) == 0 {
				t.Fatal("empty body")
			}
			etag := res.Header.Get("ETag")
			if !regexp.MustCompile(`^"[A-Za-z0-9_-]+"$`).MatchString(etag) {
				t.Fatalf("ETag %q is not a strong tag", etag)
			}

			// Revalidation: the same tag, also in a list or weak, answers 304.
			for _, inm := range []string{etag, `"other", ` + etag, "W/" + etag, "*"} {
				res := get(t, h, http.MethodGet, c.path, map[string]string{"If-None-Match": inm})
				b, _ := io.ReadAll(res.Body)
				if res.StatusCode != http.StatusNotModified || len(b) != 0 {
					t.Errorf("If-None-Match %s: status %d, %d bytes", inm, res.StatusCode, len(b))
				}
				if res.Header.Get("ETag") != etag {
					t.Errorf("304 lacks the ETag")
				}
			}
			res = get(t, h, http.MethodGet, c.path, map[string]string{"If-None-Match": `"stale"`})
			if res.StatusCode != http.StatusOK {
				t.Errorf("stale tag: status %d", res.StatusCode)
			}

			res = get(t, h, http.MethodHead, c.path, nil)
			b, _ := io.ReadAll(res.Body)
			if res.StatusCode != http.StatusOK || len(b) != 0 || res.Header.Get("ETag") != etag {
				t.Errorf("HEAD: status %d, %d bytes, etag %q", res.StatusCode, len(b), res.Header.Get("ETag"))
			}
		})
	}
}

// The bundle routes win over the socket server's wildcard; everything else
// under /socket.io/ still reaches it.
func TestStaticBesideSocketServer(t *testing.T) {
	mounted := chi.NewRouter()
	mounted.Mount("/socket.io", fakeSocketServer)
	StaticRoutes(mounted)
	after := chi.NewRouter()
	StaticRoutes(after)
	after.Handle("/socket.io/*", fakeSocketServer)
	for name, h := range map[string]http.Handler{"handle first": staticRouter(), "mount": mounted, "handle after": after} {
		t.Run(name, func(t *testing.T) { besideSocketServer(t, h) })
	}
}

func besideSocketServer(t *testing.T, h http.Handler) {
	for _, p := range []string{"/socket.io/", "/socket.io/?EIO=4&transport=polling", "/socket.io/other.js"} {
		res := get(t, h, http.MethodGet, p, nil)
		if res.StatusCode != http.StatusTeapot || res.Header.Get("X-Socket-Server") != "yes" {
			t.Errorf("%s: status %d, not the socket server", p, res.StatusCode)
		}
	}
	res := get(t, h, http.MethodGet, "/socket.io/socket.io.js", nil)
	if res.StatusCode != http.StatusOK || res.Header.Get("X-Socket-Server") != "" {
		t.Errorf("bundle: status %d", res.StatusCode)
	}
}

func TestIndexHeadersAndAccessibleNames(t *testing.T) {
	res := get(t, staticRouter(), http.MethodGet, "/", nil)
	body, _ := io.ReadAll(res.Body)
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "img-src 'self' blob: data:", "connect-src 'self' ws: wss:", "style-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	html := string(body)
	// Every control's name, as a <label> text, an aria-label, or a button text.
	for _, name := range []string{"Username", "Email", "Password", "Sign up", "Log in", "Log out", "Search users", "New group", "Message", "Send", "Attach file"} {
		re := regexp.MustCompile(`(<label[^>]*>` + name + `</label>|aria-label="` + name + `"|<button[^>]*>` + name + `</button>|<span class="visually-hidden">` + name + `</span>)`)
		if !re.MatchString(html) {
			t.Errorf("index.html has no control named %q", name)
		}
	}
	if !regexp.MustCompile(`<ul id="messages"[^>]*aria-label="Messages"`).MatchString(html) {
		t.Error("the message list is not a named <ul>")
	}
	for _, src := range []string{`src="/socket.io/socket.io.js"`, `src="/app.js"`, `href="/app.css"`} {
		if !strings.Contains(html, src) {
			t.Errorf("index.html does not load %s", src)
		}
	}
	// The CSP forbids inline script and style: the page must have none.
	if regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]+</script>|<style|\sstyle="|\son[a-z]+="`).MatchString(html) {
		t.Error("index.html has inline script, style or event handlers, which the CSP blocks")
	}
}

// The client never parses data as HTML.
func TestClientRendersTextOnly(t *testing.T) {
	js, err := staticFiles.ReadFile("static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	bad := regexp.MustCompile(`\.(innerHTML|outerHTML)\s*[+]?=|\.insertAdjacentHTML\(|document\.write|\beval\(|new Function\(|createContextualFragment|DOMParser`)
	for _, m := range bad.FindAllString(string(js), -1) {
		t.Errorf("app.js uses %s", m)
	}
}

// The vendored bundle is the one VERSION records.
func TestVendoredBundleMatchesVersionFile(t *testing.T) {
	version, err := os.ReadFile("static/socket.io/VERSION")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(version), "socket.io-client 4.") {
		t.Fatalf("VERSION does not name a socket.io-client 4.x: %q", strings.SplitN(string(version), "\n", 2)[0])
	}
	if _, err := os.Stat("static/socket.io/LICENSE"); err != nil {
		t.Fatal("the bundle's LICENSE is missing")
	}
	sums := regexp.MustCompile(`(?m)^([0-9a-f]{64})  (\S+)$`).FindAllStringSubmatch(string(version), -1)
	if len(sums) < 4 {
		t.Fatalf("VERSION lists %d hashes", len(sums))
	}
	for _, s := range sums {
		b, err := os.ReadFile("static/socket.io/" + s[2])
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != s[1] {
			t.Errorf("%s does not match its sha256 in VERSION: run scripts/update-socketio-client.sh", s[2])
		}
	}
}
