package web

import (
	"errors"
	"net/http"
	"os"
	"path"
	"strings"
)

// Cache lifetimes of a served single-page app. Build tools put a content
// hash in the names of what they emit under static/ (create-react-app's
// static/js/main.<hash>.js), so those may be kept for good; index.html and
// the other root files keep their names across builds and must be
// revalidated, or a new index.html would meet stale scripts or vice versa.
const (
	cacheHashed = "public, max-age=31536000, immutable"
	cacheSPA    = "no-cache"
)

// spa serves a built single-page app from a folder (WEB_ROOT) in place of
// the embedded client: its files as they are, and index.html for every
// other GET outside the API, so the app's own router sees deep links.
type spa struct {
	root     http.FileSystem
	notFound http.HandlerFunc // the API's 404, for paths the app does not own
}

func newSPA(dir string, notFound http.HandlerFunc) *spa {
	return &spa{root: http.Dir(dir), notFound: notFound}
}

// owns tells whether a path is the app's rather than the server's.
func spaOwns(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	p := r.URL.Path
	for _, prefix := range []string{"/api/", "/socket.io/"} {
		if strings.HasPrefix(p, prefix) || p+"/" == prefix {
			return false
		}
	}
	return true
}

func (s *spa) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !spaOwns(r) {
		s.notFound(w, r)
		return
	}
	name := path.Clean("/" + r.URL.Path)
	if name != "/" && s.serveFile(w, r, name) {
		return
	}
	if !s.serveFile(w, r, "/index.html") {
		s.notFound(w, r)
	}
}

// serveFile serves one regular file and reports whether there was one.
func (s *spa) serveFile(w http.ResponseWriter, r *http.Request, name string) bool {
	f, err := s.root.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.IsDir() {
		return false
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	if strings.HasPrefix(name, "/static/") {
		h.Set("Cache-Control", cacheHashed)
	} else {
		h.Set("Cache-Control", cacheSPA)
	}
	http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
	return true
}

// CheckWebRoot reports whether dir holds a single-page app to serve.
func CheckWebRoot(dir string) error {
	fi, err := os.Stat(path.Join(dir, "index.html"))
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return errors.New("index.html is a directory")
	}
	return nil
}
