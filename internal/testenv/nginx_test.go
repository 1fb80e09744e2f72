package testenv

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// clientFrom is an HTTP client whose connections leave from source.
func clientFrom(source string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

func get(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	res, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// nginx in front of two backends keeps each client address on one backend,
// and clients from different /24s reach both.
func TestNginxStickyByAddress(t *testing.T) {
	var upstreams []string
	for _, name := range []string{"node1", "node2"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, name)
		}))
		t.Cleanup(srv.Close)
		upstreams = append(upstreams, strings.TrimPrefix(srv.URL, "http://"))
	}
	ng := StartNginx(t, upstreams...)

	seen := map[string]bool{}
	for n := 1; n <= 8 && len(seen) < 2; n++ {
		c := clientFrom(ClientAddr(n))
		first := get(t, c, ng.URL+"/socket.io/?n=1")
		for range 3 {
			if again := get(t, c, ng.URL+"/socket.io/?n=2"); again != first {
				t.Fatalf("client %s went to %s, then %s: not sticky", ClientAddr(n), first, again)
			}
		}
		seen[first] = true
	}
	if len(seen) != 2 {
		t.Fatalf("eight client /24s all reached %v; ip_hash should spread them", seen)
	}
}
