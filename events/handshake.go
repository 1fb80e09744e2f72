package events

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/parley-chat/parley/auth"
	"github.com/parley-chat/parley/internal/apperr"
)

// handshakeToken finds a handshake's credential. The handshake auth object
// (v3/v4 clients) comes first, then the token query parameter (v2 clients
// cannot send auth), then what REST accepts (auth.TokenFromRequest).
func handshakeToken(authData map[string]any, query url.Values, header http.Header) string {
	if tok := stringish(authData["token"]); tok != "" {
		return tok
	}
	if tok := query.Get("token"); tok != "" {
		return tok
	}
	// TokenFromRequest reads only the headers: the Authorization header,
	// then the token cookie.
	return auth.TokenFromRequest(&http.Request{Header: header})
}

// stringish reads a string, or the first of a list: an Engine.IO 3
// namespace query arrives as lists of strings.
func stringish(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case []string:
		if len(t) > 0 {
			return t[0]
		}
	case []any:
		if len(t) > 0 {
			s, _ := t[0].(string)
			return s
		}
	}
	return ""
}

// presentsCredentials tells whether a handshake offers any credential at
// all, even an empty or malformed one: only a handshake with none is
// admitted to wait for a MERN setup; any other must pass the check.
func presentsCredentials(authData map[string]any, query url.Values, header http.Header) bool {
	if _, ok := authData["token"]; ok {
		return true
	}
	if query.Has("token") || header.Get("Authorization") != "" {
		return true
	}
	_, err := (&http.Request{Header: header}).Cookie(auth.CookieName)
	return err == nil
}

// authTimeout bounds a handshake's credential check (the session cache,
// or the database on a miss).
const authTimeout = 5 * time.Second

// authenticate checks a handshake's token.
func (s *Server) authenticate(token string) (auth.Identity, error) {
	if token == "" {
		return auth.Identity{}, auth.ErrUnauthenticated
	}
	ctx, cancel := context.WithTimeout(s.ctx, authTimeout)
	defer cancel()
	return s.accounts.Authenticate(ctx, token)
}

// admit decides whether a handshake may open a socket: the address's
// handshake rate and open sockets (before the credential is checked, so a
// flood costs no database work), the credential, then the user's open
// sockets. remoteAddr ("host:port") and header are the handshake request's,
// for the client address (TRUSTED_PROXIES). On success release gives the
// socket's slots back; the engine calls it once, when the transport
// closes. Refusals over a limit are apperr.RateLimited (connect_error
// "rate_limited"); any engine calls this, it knows no engine.
func (s *Server) admit(token, remoteAddr string, header http.Header) (id auth.Identity, release func(), err error) {
	releaseAddr, err := s.admitAddress(remoteAddr, header)
	if err != nil {
		return auth.Identity{}, nil, err
	}
	id, err = s.authenticate(token)
	if err != nil {
		releaseAddr()
		return auth.Identity{}, nil, err
	}
	releaseUser, err := s.admitUser(id)
	if err != nil {
		releaseAddr()
		return auth.Identity{}, nil, err
	}
	return id, func() { releaseUser(); releaseAddr() }, nil
}

// admitAddress is admit's first half, the part a handshake without
// credentials (a MERN socket waiting for setup) passes too: the address's
// handshake rate and one of its open-socket slots, given back once by
// release.
func (s *Server) admitAddress(remoteAddr string, header http.Header) (release func(), err error) {
	addr := s.addrs.AddrOf(remoteAddr, header)
	lim := s.cfg.Limits
	res, err := s.limiter.Allow(s.ctx, "handshake:"+addr, lim.Handshakes)
	if err != nil {
		s.log.Warn("socket handshake: rate limit unavailable", "err", err)
	} else if !res.Allowed {
		s.metrics.limited("handshake")
		return nil, rateLimited("too many connections from this address", res.RetryAfter)
	}
	slot := "addr:" + addr
	if !s.slots.Acquire(slot, lim.SocketsPerAddress) {
		s.metrics.limited("sockets_per_address")
		return nil, rateLimited("too many open sockets from this address", time.Second)
	}
	var once sync.Once
	return func() { once.Do(func() { s.slots.Release(slot) }) }, nil
}

// admitUser is admit's second half, once the user is known (at the
// handshake, or at a waiting socket's setup): one of the user's
// open-socket slots, and the session's expiry watched, both given back
// once by release.
func (s *Server) admitUser(id auth.Identity) (release func(), err error) {
	slot := "user:" + id.UserID
	if !s.slots.Acquire(slot, s.cfg.Limits.SocketsPerUser) {
		s.metrics.limited("sockets_per_user")
		return nil, rateLimited("too many open sockets for this user", time.Second)
	}
	s.watchExpiry(id)
	var once sync.Once
	return func() {
		once.Do(func() {
			s.unwatchExpiry(id.SessionID)
			s.slots.Release(slot)
		})
	}, nil
}

// sessionExpiry ends a session's sockets when the session ends by time,
// as a logout would: session:revoked, then disconnect. One timer per
// session with sockets on this node, stopped with its last socket.
type sessionExpiry struct {
	timer   *time.Timer
	sockets int
}

func (s *Server) watchExpiry(id auth.Identity) {
	if id.ExpiresAt.IsZero() {
		return
	}
	s.expiryMu.Lock()
	defer s.expiryMu.Unlock()
	if e := s.expiries[id.SessionID]; e != nil {
		e.sockets++
		return
	}
	// A token's exp has whole seconds, the session's expiry milliseconds:
	// a second later the session has surely ended, so a socket never goes
	// while its token still works.
	end := id.ExpiresAt.Add(time.Second)
	s.expiries[id.SessionID] = &sessionExpiry{sockets: 1, timer: time.AfterFunc(end.Sub(s.now()), func() {
		s.expiryMu.Lock()
		delete(s.expiries, id.SessionID)
		s.expiryMu.Unlock()
		s.revoke(id.UserID, []string{id.SessionID})
	})}
}

func (s *Server) unwatchExpiry(sid string) {
	s.expiryMu.Lock()
	defer s.expiryMu.Unlock()
	e := s.expiries[sid]
	if e == nil {
		return
	}
	if e.sockets--; e.sockets <= 0 {
		e.timer.Stop()
		delete(s.expiries, sid)
	}
}

func rateLimited(message string, retryAfter time.Duration) *apperr.Error {
	return &apperr.Error{Code: apperr.RateLimited, Message: message, RetryAfter: retryAfter}
}

// handshakeError sorts a failed credential check. Bad credentials answer
// the contract's connect_error "unauthorized". A check that could not be
// made (cache and database down) is transient: the engine drops the
// connection instead, since clients do not retry after a connect_error but
// do reconnect after a transport close, and must not throw a good token
// away over an outage.
func (s *Server) handshakeError(err error) (message string, transient bool) {
	e := apperr.From(err)
	if e.Code == apperr.Unauthorized || e.Code == apperr.RateLimited {
		return string(e.Code), false
	}
	s.log.Error("socket handshake: credential check failed", "err", err)
	return string(e.Code), true
}
