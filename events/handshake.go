package events

import (
	"context"
	"net/http"
	"net/url"
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

// admit decides a handshake. Credentials that verify admit the socket as
// that user. A handshake without any credential is admitted to wait for
// the MERN app's setup event (awaiting; see mern.go), which the app sends
// right after connecting. Credentials that do not verify are refused, at
// once, whichever way they came.
func (s *Server) admit(authData map[string]any, query url.Values, header http.Header) (id auth.Identity, awaiting bool, err error) {
	if !presentsCredentials(authData, query, header) {
		return auth.Identity{}, true, nil
	}
	id, err = s.authenticate(handshakeToken(authData, query, header))
	return id, false, err
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

// handshakeError sorts a failed credential check. Bad credentials answer
// the contract's connect_error "unauthorized". A check that could not be
// made (cache and database down) is transient: the engine drops the
// connection instead, since clients do not retry after a connect_error but
// do reconnect after a transport close, and must not throw a good token
// away over an outage.
func (s *Server) handshakeError(err error) (message string, transient bool) {
	e := apperr.From(err)
	if e.Code == apperr.Unauthorized {
		return string(apperr.Unauthorized), false
	}
	s.log.Error("socket handshake: credential check failed", "err", err)
	return string(e.Code), true
}
