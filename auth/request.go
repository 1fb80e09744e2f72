package auth

import (
	"net/http"
	"strings"
)

// CookieName is the cookie signup and login set to carry the token.
const CookieName = "token"

// TokenFromRequest finds a credential as REST and the socket handshake both
// accept it: the Authorization header first (a header that is not a Bearer
// one means no token, not the cookie), then the token cookie.
func TokenFromRequest(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	if c, err := r.Cookie(CookieName); err == nil {
		return c.Value
	}
	return ""
}
