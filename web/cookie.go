package web

import (
	"net"
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

// ClientAddr is the peer address for throttling. Forwarded headers are not
// trusted: a client could set them to dodge the per-address limit.
func ClientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
