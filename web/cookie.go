package web

import (
	"net/http"
	"time"

	"github.com/parley-chat/parley/auth"
)

// SetTokenCookie sets the HttpOnly, SameSite=Lax `token` cookie that signup
// and login give browser clients, for Parley's API and the MERN API alike.
func SetTokenCookie(w http.ResponseWriter, r *http.Request, token string, expires time.Time, secure bool) {
	http.SetCookie(w, &http.Cookie{
		Name: auth.CookieName, Value: token, Path: "/", Expires: expires,
		MaxAge: int(time.Until(expires).Seconds()), HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: secure || r.TLS != nil,
	})
}

// ClientAddr is the caller's address for throttling (the login throttle's
// per-address count, Parley's and the MERN API's alike): the one the REST
// flood limits use, found behind TRUSTED_PROXIES from X-Forwarded-For, else
// the peer. Behind a proxy the peer is the proxy, so counting by it would
// put every client in one budget: 20 failed guesses anywhere would lock
// everyone out.
func ClientAddr(r *http.Request) string { return clientAddr(r) }
