package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/parley-chat/parley/auth"
	"github.com/parley-chat/parley/internal/apperr"
	"github.com/parley-chat/parley/internal/wire"
	"github.com/parley-chat/parley/store"
)

const cookieName = "token"

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
		Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
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

func (s *server) signup(w http.ResponseWriter, r *http.Request) {
	var req signupRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	g, err := s.accounts.Signup(r.Context(), auth.SignupInput{
		Username: deref(req.Username), Email: deref(req.Email), Password: deref(req.Password),
		DisplayName: req.DisplayName, UserAgent: r.UserAgent(),
	})
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	s.answerGrant(w, r, http.StatusCreated, g)
}

type loginRequest struct {
	Login    *string `json:"login"`
	Password *string `json:"password"`
}

func (s *server) login(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	g, err := s.accounts.Login(r.Context(), deref(req.Login), deref(req.Password), ClientAddr(r), r.UserAgent())
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	s.answerGrant(w, r, http.StatusOK, g)
}

func (s *server) logout(w http.ResponseWriter, r *http.Request) {
	id := identityFrom(r.Context())
	if err := s.sessions.End(r.Context(), id.UserID, id.SessionID); err != nil && !errors.Is(err, store.ErrNotFound) {
		writeError(w, r, s.log, err)
		return
	}
	s.clearCookie(w, r)
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) logoutAll(w http.ResponseWriter, r *http.Request) {
	id := identityFrom(r.Context())
	if err := s.sessions.EndAll(r.Context(), id.UserID, ""); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	s.clearCookie(w, r)
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) listSessions(w http.ResponseWriter, r *http.Request) {
	id := identityFrom(r.Context())
	ss, err := s.sessions.List(r.Context(), id.UserID)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	out := make([]wire.Session, len(ss))
	for i := range ss {
		out[i] = wire.NewSession(&ss[i], ss[i].ID == id.SessionID)
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

func (s *server) endSession(w http.ResponseWriter, r *http.Request) {
	id := identityFrom(r.Context())
	sid := chi.URLParam(r, "id")
	if !store.ValidID(sid) {
		writeError(w, r, s.log, apperr.New(apperr.NotFound, "no such session"))
		return
	}
	if err := s.sessions.End(r.Context(), id.UserID, sid); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = apperr.Wrap(apperr.NotFound, "no such session", err)
		}
		writeError(w, r, s.log, err)
		return
	}
	if sid == id.SessionID {
		s.clearCookie(w, r)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) getMe(w http.ResponseWriter, r *http.Request) {
	id := identityFrom(r.Context())
	u, err := s.users.UserByID(r.Context(), id.UserID)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.NewMe(u, s.presence.Online(u.ID)))
}

type patchMeRequest struct {
	DisplayName     *string `json:"displayName"`
	CurrentPassword *string `json:"currentPassword"`
	NewPassword     *string `json:"newPassword"`
}

func (s *server) patchMe(w http.ResponseWriter, r *http.Request) {
	var req patchMeRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	u, err := s.accounts.UpdateProfile(r.Context(), identityFrom(r.Context()), auth.ProfileInput{
		DisplayName: req.DisplayName, CurrentPassword: req.CurrentPassword, NewPassword: req.NewPassword,
	})
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.NewMe(u, s.presence.Online(u.ID)))
}

func (s *server) searchUsers(w http.ResponseWriter, r *http.Request) {
	q := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("q")))
	limit := 20
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, r, s.log, apperr.Field("limit", "must be a whole number of at least 1"))
			return
		}
		limit = min(n, 50)
	}
	users, err := s.users.SearchUsers(r.Context(), q, limit)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	out := make([]wire.User, len(users))
	for i := range users {
		out[i] = wire.NewUser(&users[i], s.presence.Online(users[i].ID))
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out})
}

func (s *server) getUser(w http.ResponseWriter, r *http.Request) {
	uid := chi.URLParam(r, "id")
	if !store.ValidID(uid) {
		writeError(w, r, s.log, apperr.New(apperr.NotFound, "no such user"))
		return
	}
	u, err := s.users.UserByID(r.Context(), uid)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.NewUser(u, s.presence.Online(u.ID)))
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
