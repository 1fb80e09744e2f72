package web

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/parley-chat/parley/auth"
	"github.com/parley-chat/parley/internal/apperr"
	"github.com/parley-chat/parley/internal/str"
	"github.com/parley-chat/parley/internal/wire"
	"github.com/parley-chat/parley/store"
)

type grantBody struct {
	Token     string    `json:"token"`
	ExpiresAt wire.Time `json:"expiresAt"`
	User      wire.Me   `json:"user"`
}

func (s *server) answerGrant(w http.ResponseWriter, r *http.Request, status int, g *auth.Grant) {
	SetTokenCookie(w, r, g.Token, g.ExpiresAt, s.secureCookies)
	writeJSON(w, status, grantBody{Token: g.Token, ExpiresAt: wire.Time{Time: g.ExpiresAt}, User: wire.NewMe(g.User, s.presence.Online(g.User.ID))})
}

func (s *server) clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: auth.CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: s.secureCookies || r.TLS != nil,
	})
}

// Request bodies use pointers so a missing field and a field of the wrong
// JSON type can be told apart from an empty one.
type signupRequest struct {
	Username    *string `json:"username"`
	Email       *string `json:"email"`
	Password    *string `json:"password"`
	DisplayName *string `json:"displayName"`
}

func (s *server) signup(w http.ResponseWriter, r *http.Request) error {
	var req signupRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if err := s.take(r.Context(), "signup:", clientAddr(r), s.limits.Signups); err != nil {
		return err
	}
	g, err := s.accounts.Signup(r.Context(), auth.SignupInput{
		Username: str.Deref(req.Username), Email: str.Deref(req.Email), Password: str.Deref(req.Password),
		DisplayName: req.DisplayName, UserAgent: r.UserAgent(),
	})
	if err != nil {
		return err
	}
	s.answerGrant(w, r, http.StatusCreated, g)
	return nil
}

type loginRequest struct {
	Login    *string `json:"login"`
	Password *string `json:"password"`
}

func (s *server) login(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	g, err := s.accounts.Login(r.Context(), str.Deref(req.Login), str.Deref(req.Password), ClientAddr(r), r.UserAgent())
	if err != nil {
		return err
	}
	s.answerGrant(w, r, http.StatusOK, g)
	return nil
}

func (s *server) logout(w http.ResponseWriter, r *http.Request) error {
	return s.signOut(w, r, s.accounts.Logout)
}

func (s *server) logoutAll(w http.ResponseWriter, r *http.Request) error {
	return s.signOut(w, r, s.accounts.LogoutAll)
}

// signOut ends the caller's session(s) with end and clears the cookie.
func (s *server) signOut(w http.ResponseWriter, r *http.Request, end func(context.Context, auth.Identity) error) error {
	if err := end(r.Context(), identityFrom(r.Context())); err != nil {
		return err
	}
	s.clearCookie(w, r)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) listSessions(w http.ResponseWriter, r *http.Request) error {
	id := identityFrom(r.Context())
	ss, err := s.accounts.Sessions(r.Context(), id)
	if err != nil {
		return err
	}
	out := make([]wire.Session, len(ss))
	for i := range ss {
		out[i] = wire.NewSession(&ss[i], ss[i].ID == id.SessionID)
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
	return nil
}

func (s *server) endSession(w http.ResponseWriter, r *http.Request) error {
	id := identityFrom(r.Context())
	sid := chi.URLParam(r, "id")
	if err := s.accounts.EndSession(r.Context(), id, sid); err != nil {
		return err
	}
	if sid == id.SessionID {
		s.clearCookie(w, r)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) getMe(w http.ResponseWriter, r *http.Request) error {
	u, err := s.users.UserByID(r.Context(), identityFrom(r.Context()).UserID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.NewMe(u, s.presence.Online(u.ID)))
	return nil
}

type patchMeRequest struct {
	DisplayName     *string `json:"displayName"`
	CurrentPassword *string `json:"currentPassword"`
	NewPassword     *string `json:"newPassword"`
}

func (s *server) patchMe(w http.ResponseWriter, r *http.Request) error {
	var req patchMeRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	u, err := s.accounts.UpdateProfile(r.Context(), identityFrom(r.Context()), auth.ProfileInput{
		DisplayName: req.DisplayName, CurrentPassword: req.CurrentPassword, NewPassword: req.NewPassword,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.NewMe(u, s.presence.Online(u.ID)))
	return nil
}

func (s *server) searchUsers(w http.ResponseWriter, r *http.Request) error {
	q := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("q")))
	limit := 20
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return apperr.Field("limit", "must be a whole number of at least 1")
		}
		limit = min(n, 50)
	}
	users, err := s.users.SearchUsers(r.Context(), q, limit)
	if err != nil {
		return err
	}
	out := make([]wire.User, len(users))
	for i := range users {
		out[i] = wire.NewUser(&users[i], s.presence.Online(users[i].ID))
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out})
	return nil
}

func (s *server) getUser(w http.ResponseWriter, r *http.Request) error {
	uid := chi.URLParam(r, "id")
	if !store.ValidID(uid) {
		return apperr.New(apperr.NotFound, "no such user")
	}
	u, err := s.users.UserByID(r.Context(), uid)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.NewUser(u, s.presence.Online(u.ID)))
	return nil
}
