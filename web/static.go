package web

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
)

// The browser client and the vendored socket.io client bundle, built into
// the binary: no build step, no files to deploy next to it.
//
//go:embed static/index.html static/app.js static/app.css
//go:embed static/socket.io/socket.io.js static/socket.io/socket.io.js.map
//go:embed static/socket.io/socket.io.min.js static/socket.io/socket.io.min.js.map
var staticFiles embed.FS

// contentSecurityPolicy guards the HTML page: scripts and styles only from
// Parley itself (no inline script, so injected markup could not run even if
// it reached the DOM), images also from blob:/data: (local previews),
// sockets to this origin.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' blob: data:; connect-src 'self' ws: wss:; object-src 'none'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// asset is one embedded file, ready to serve.
type asset struct {
	body         []byte
	etag         string
	contentType  string
	cacheControl string
	html         bool
}

// The socket.io bundle changes only with a refresh of the vendored copy, so
// caches may keep it a day (the ETag revalidates after that). The app's own
// files have stable names, so browsers must revalidate them on every load
// or an upgrade would leave a stale app.js beside a new index.html.
const (
	cacheBundle = "public, max-age=86400"
	cacheApp    = "no-cache"
)

func loadAsset(name, contentType, cacheControl string) asset {
	body, err := fs.ReadFile(staticFiles, "static/"+name)
	if err != nil {
		panic(fmt.Sprintf("web: embedded asset %s missing: %v", name, err))
	}
	sum := sha256.Sum256(body)
	return asset{
		body: body,
		// A strong ETag from the content itself: equal bytes, equal tag,
		// on every node and across restarts.
		etag:         `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`,
		contentType:  contentType,
		cacheControl: cacheControl,
		html:         strings.HasSuffix(name, ".html"),
	}
}

const (
	typeJS   = "application/javascript; charset=utf-8"
	typeJSON = "application/json"
)

// StaticRoutes serves the browser client and the socket.io client bundle:
//
//	/                              index.html (with CSP)
//	/app.js, /app.css              the client
//	/socket.io/socket.io.js        the socket.io-client 4.x bundle, as a Node
//	/socket.io/socket.io.min.js    socket.io server serves it
//	/socket.io/socket.io.js.map, /socket.io/socket.io.min.js.map
//
// The Socket.IO server is mounted at /socket.io/ too. chi matches a static
// path before a wildcard, so these exact routes win over a "/socket.io/*"
// mount whatever the order of registration; every other /socket.io/ path
// still reaches the socket server. Call it on the root router.
func StaticRoutes(r chi.Router) {
	routes := map[string]asset{
		"/":                               loadAsset("index.html", "text/html; charset=utf-8", cacheApp),
		"/app.js":                         loadAsset("app.js", typeJS, cacheApp),
		"/app.css":                        loadAsset("app.css", "text/css; charset=utf-8", cacheApp),
		"/socket.io/socket.io.js":         loadAsset("socket.io/socket.io.js", typeJS, cacheBundle),
		"/socket.io/socket.io.js.map":     loadAsset("socket.io/socket.io.js.map", typeJSON, cacheBundle),
		"/socket.io/socket.io.min.js":     loadAsset("socket.io/socket.io.min.js", typeJS, cacheBundle),
		"/socket.io/socket.io.min.js.map": loadAsset("socket.io/socket.io.min.js.map", typeJSON, cacheBundle),
	}
	for path, a := range routes {
		h := a.serve
		r.Get(path, h)
		r.Head(path, h)
	}
}

func (a asset) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", a.cacheControl)
	h.Set("X-Content-Type-Options", "nosniff")
	if a.html {
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
	}
	if etagMatches(r.Header.Get("If-None-Match"), a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", a.contentType)
	h.Set("Content-Length", strconv.Itoa(len(a.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(a.body)
	}
}

// etagMatches applies If-None-Match's weak comparison (RFC 9110 13.1.2): a
// list of tags, "*", and W/ prefixes that do not change the match.
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}
