// Package clientaddr finds the address a request really comes from, for
// per-address limits. Behind a proxy the peer is the proxy; X-Forwarded-For
// is believed only from proxies the operator trusts (TRUSTED_PROXIES),
// since anyone else can write any address into it.
package clientaddr

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver knows which peers are trusted proxies.
type Resolver struct{ trusted []netip.Prefix }

// New parses CIDRs (a bare address is a /32 or /128).
func New(cidrs []string) (*Resolver, error) {
	r := &Resolver{}
	for _, c := range cidrs {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if !strings.Contains(c, "/") {
			a, err := netip.ParseAddr(c)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: %w", c, err)
			}
			r.trusted = append(r.trusted, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", c, err)
		}
		r.trusted = append(r.trusted, p.Masked())
	}
	return r, nil
}

func (r *Resolver) isTrusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Addr is the client's address: the peer, unless the peer is a trusted
// proxy; then the right-most X-Forwarded-For hop that is not a trusted
// proxy (hops to its left were written by the client and prove nothing).
func (r *Resolver) Addr(req *http.Request) string {
	return r.AddrOf(req.RemoteAddr, req.Header)
}

// AddrOf is Addr for a peer address ("host:port") and request headers
// known apart from an *http.Request (a socket handshake).
func (r *Resolver) AddrOf(remoteAddr string, header http.Header) string {
	peer := peerAddr(remoteAddr)
	if r == nil || len(r.trusted) == 0 {
		return peer
	}
	a, err := netip.ParseAddr(peer)
	if err != nil || !r.isTrusted(a) {
		return peer
	}
	hops := forwardedHops(header.Values("X-Forwarded-For"))
	for i := len(hops) - 1; i >= 0; i-- {
		h, err := netip.ParseAddr(hops[i])
		if err != nil {
			// A hop a trusted proxy wrote cannot be garbage; what is left
			// of it came from the client. The last good hop is the answer.
			return peer
		}
		h = h.Unmap()
		if !r.isTrusted(h) {
			return h.String()
		}
		peer = h.String()
	}
	return peer
}

func forwardedHops(values []string) []string {
	var hops []string
	for _, v := range values {
		for _, h := range strings.Split(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hops = append(hops, h)
			}
		}
	}
	return hops
}

func peerAddr(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().String()
	}
	return host
}
