package mern

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"

	"github.com/parley-chat/parley/auth"
	"github.com/parley-chat/parley/internal/apperr"
	"github.com/parley-chat/parley/web"
)

// searchLimit bounds one user search.
const searchLimit = 50

// usernameTries is how many generated usernames a signup tries before
// giving up (each after the first has a random suffix).
const usernameTries = 6

// signup is POST /api/user {name, email, password, pic?}. The app has no
// usernames; Parley's is generated from the name (or the email), unique.
// pic is the URL of a picture the app uploaded elsewhere; it is kept.
func (a *API) signup(w http.ResponseWriter, r *http.Request) error {
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	name, err1 := b.str("name")
	email, err2 := b.str("email")
	password, err3 := b.str("password")
	pic, err4 := b.str("pic")
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return err
	}
	if name == "" || email == "" || password == "" {
		return badRequest("Please enter all the fields: name, email and password")
	}
	var g *auth.Grant
	for try := range usernameTries {
		username := UsernameFor(name, email, try)
		g, err = a.accounts.Signup(r.Context(), auth.SignupInput{
			Username: username, Email: email, Password: password, DisplayName: &name, PictureURL: pic, UserAgent: r.UserAgent(),
			App: auth.AppMERN,
		})
		if e := apperr.From(err); err == nil || e.Code != apperr.Conflict || e.Fields["username"] == "" {
			break
		}
	}
	if err != nil {
		return signupError(err)
	}
	return a.answerGrant(w, r, http.StatusCreated, g)
}

// signupError speaks of the app's fields: its users have a name, and an
// email already registered is "User already exists".
func signupError(err error) error {
	e := apperr.From(err)
	switch {
	case e.Code == apperr.Conflict && e.Fields["email"] != "":
		return apperr.Wrap(apperr.Conflict, "User already exists", err)
	case e.Code == apperr.InvalidInput && len(e.Fields) > 0:
		appNames := map[string]string{"displayName": "name", "pictureUrl": "pic"}
		fields := map[string]string{}
		for k, v := range e.Fields {
			if n, ok := appNames[k]; ok {
				k = n
			}
			fields[k] = v
		}
		return apperr.Invalid(e.Message, fields)
	}
	return err
}

// login is POST /api/user/login {email, password}. Parley's login throttle
// applies; unknown email and wrong password answer alike.
func (a *API) login(w http.ResponseWriter, r *http.Request) error {
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	email, err1 := b.str("email")
	password, err2 := b.str("password")
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if email == "" || password == "" {
		return badRequest("Please enter all the fields: email and password")
	}
	g, err := a.accounts.LoginApp(r.Context(), auth.AppMERN, email, password, web.ClientAddr(r), r.UserAgent())
	if errors.Is(err, auth.ErrBadLogin) {
		return apperr.Wrap(apperr.Unauthorized, "Invalid Email or Password", err)
	}
	if err != nil {
		return err
	}
	return a.answerGrant(w, r, http.StatusOK, g)
}

// answerGrant answers with the user and its token, and sets the same
// `token` cookie as Parley's login, so a same-origin socket may use it.
func (a *API) answerGrant(w http.ResponseWriter, r *http.Request, status int, g *auth.Grant) error {
	web.SetTokenCookie(w, r, g.Token, g.ExpiresAt, a.secure)
	writeJSON(w, status, authResponse{User: userOf(g.User), Token: g.Token})
	return nil
}

// searchUsers is GET /api/user?search=q: users other than the caller whose
// name or email contains q, ignoring case.
func (a *API) searchUsers(w http.ResponseWriter, r *http.Request) error {
	me := identityFrom(r.Context()).UserID
	q := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("search")))
	found, err := a.users.UsersContaining(r.Context(), q, searchLimit+1)
	if err != nil {
		return err
	}
	out := make([]User, 0, len(found))
	for i := range found {
		if found[i].ID != me && len(out) < searchLimit {
			out = append(out, userOf(&found[i]))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// requireAuth accepts what Parley's API accepts (a Bearer token, or the
// token cookie) and answers the app's 401s.
func (a *API) requireAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := auth.TokenFromRequest(r)
		if tok == "" {
			a.writeError(w, r, apperr.New(apperr.Unauthorized, "Not authorized, no token"))
			return
		}
		id, err := a.accounts.Authenticate(r.Context(), tok)
		if err != nil {
			if apperr.From(err).Code == apperr.Unauthorized {
				err = apperr.Wrap(apperr.Unauthorized, "Not authorized, token failed", err)
			}
			a.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
	})
}

// usernameBase makes a Parley username from the app's name or email: the
// letters, digits, '_', '.' and '-' of it, lower-cased, 3 to 24 characters
// (leaving room for a suffix).
func usernameBase(name, email string) string {
	for _, src := range []string{name, strings.SplitN(email, "@", 2)[0]} {
		var b strings.Builder
		for _, r := range strings.ToLower(src) {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
				b.WriteRune(r)
			case r == ' ' && b.Len() > 0:
				b.WriteByte('.')
			}
		}
		s := strings.Trim(b.String(), ".-_")
		if len(s) > 24 {
			s = strings.Trim(s[:24], ".-_")
		}
		if len(s) >= 3 {
			return s
		}
	}
	return "user"
}

// UsernameFor is the username generator, for the importer: base, then
// base with a random suffix.
func UsernameFor(name, email string, try int) string {
	base := usernameBase(name, email)
	if try == 0 {
		return base
	}
	return base + "." + randomSuffix()
}

func randomSuffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
