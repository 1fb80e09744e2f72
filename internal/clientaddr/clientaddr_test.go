package clientaddr

import (
	"net/http"
	"testing"
)

func TestAddr(t *testing.T) {
	cases := []struct {
		name    string
		trusted []string
		remote  string
		xff     []string
		want    string
	}{
		{"no proxies: the peer, whatever the header says", nil, "203.0.113.9:5555", []string{"1.2.3.4"}, "203.0.113.9"},
		{"untrusted peer: header ignored", []string{"10.0.0.0/8"}, "203.0.113.9:5555", []string{"1.2.3.4"}, "203.0.113.9"},
		{"trusted peer: the right-most untrusted hop", []string{"10.0.0.0/8"}, "10.0.0.2:80", []string{"6.6.6.6, 198.51.100.7"}, "198.51.100.7"},
		{"chain of trusted proxies", []string{"10.0.0.0/8", "192.0.2.1"}, "10.0.0.2:80", []string{"198.51.100.7, 192.0.2.1", "10.1.1.1"}, "198.51.100.7"},
		{"client-written garbage left of the real hop", []string{"10.0.0.0/8"}, "10.0.0.2:80", []string{"not-an-ip, 198.51.100.7"}, "198.51.100.7"},
		{"garbage as the right-most hop: the proxy", []string{"10.0.0.0/8"}, "10.0.0.2:80", []string{"198.51.100.7, junk"}, "10.0.0.2"},
		{"trusted peer without a header", []string{"10.0.0.0/8"}, "10.0.0.2:80", nil, "10.0.0.2"},
		{"every hop trusted: the left-most", []string{"10.0.0.0/8"}, "10.0.0.2:80", []string{"10.9.9.9"}, "10.9.9.9"},
		{"IPv6 peer", []string{"::1"}, "[::1]:80", []string{"2001:db8::1"}, "2001:db8::1"},
		{"IPv4-mapped IPv6 peer", []string{"127.0.0.1"}, "[::ffff:127.0.0.1]:80", []string{"198.51.100.7"}, "198.51.100.7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := New(c.trusted)
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest("GET", "/", nil)
			req.RemoteAddr = c.remote
			for _, v := range c.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			if got := r.Addr(req); got != c.want {
				t.Fatalf("Addr = %q, want %q", got, c.want)
			}
		})
	}
}

func TestNewRefusesBadCIDRs(t *testing.T) {
	for _, bad := range []string{"10.0.0.0/33", "nonsense", "10.0.0/8"} {
		if _, err := New([]string{bad}); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
}
