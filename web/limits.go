package web

import (
	"context"
	"net/http"

	"github.com/parley-chat/parley/internal/apperr"
	"github.com/parley-chat/parley/internal/clientaddr"
	"github.com/parley-chat/parley/internal/ratelimit"
)

// Limits are the REST flood limits, per client address.
type Limits struct {
	// Limiter holds the budgets; nil means no limits.
	Limiter ratelimit.Limiter
	// Addrs finds the client address (TRUSTED_PROXIES); nil: the peer.
	Addrs *clientaddr.Resolver
	// REST bounds every /api request; Signups bounds accounts created.
	REST, Signups ratelimit.Limit
}

type addrKey struct{}

// clientAddr is the caller's address as Limits.Addrs sees it, found once
// per request by withClientAddr.
func clientAddr(r *http.Request) string {
	if a, ok := r.Context().Value(addrKey{}).(string); ok {
		return a
	}
	return (*clientaddr.Resolver)(nil).Addr(r)
}

func (s *server) withClientAddr(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), addrKey{}, s.limits.Addrs.Addr(r))))
	})
}

// limitREST answers 429 with Retry-After once the address has spent its
// REST budget. A limiter that cannot answer at all lets the request
// through: Fallback already counts locally while Redis is down.
func (s *server) limitREST(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.take(r.Context(), "rest:", clientAddr(r), s.limits.REST); err != nil {
			writeError(w, r, s.log, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// take spends one unit of key's budget, or returns rate_limited.
func (s *server) take(ctx context.Context, prefix, key string, l ratelimit.Limit) error {
	if s.limits.Limiter == nil || l.Off() {
		return nil
	}
	res, err := s.limits.Limiter.Allow(ctx, prefix+key, l)
	if err != nil {
		s.log.Warn("rate limit unavailable", "err", err)
		return nil
	}
	if !res.Allowed {
		return &apperr.Error{Code: apperr.RateLimited, Message: "too many requests, try again later", RetryAfter: res.RetryAfter}
	}
	return nil
}
