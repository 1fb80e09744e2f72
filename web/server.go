// Package web is Parley's HTTP face: the chi router, REST handlers, CORS and
// the embedded client. Handlers decode, call a domain service (auth, chat,
// files) through the small interfaces declared here, and return an error;
// handle turns it into the contract's error body in one place.
package web

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/cors"

	"github.com/parley-chat/parley/auth"
	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/files"
	"github.com/parley-chat/parley/internal/apperr"
	"github.com/parley-chat/parley/store"
)

// Presence tells whether a user has a live socket.
type Presence interface {
	Online(userID string) bool
}

type noPresence struct{}

func (noPresence) Online(string) bool { return false }

// Pinger is something /readyz checks.
type Pinger interface {
	Ping(ctx context.Context) error
}

// UserStore is the part of the store the user handlers read.
type UserStore interface {
	UserByID(ctx context.Context, id string) (*store.User, error)
	UsersByIDs(ctx context.Context, ids []string) ([]store.User, error)
	SearchUsers(ctx context.Context, prefix string, limit int) ([]store.User, error)
}

// Accounts is the one way in to accounts and sessions; *auth.Accounts
// implements it.
type Accounts interface {
	Signup(ctx context.Context, in auth.SignupInput) (*auth.Grant, error)
	Login(ctx context.Context, login, password, client, userAgent string) (*auth.Grant, error)
	Authenticate(ctx context.Context, token string) (auth.Identity, error)
	UpdateProfile(ctx context.Context, who auth.Identity, in auth.ProfileInput) (*store.User, error)
	Logout(ctx context.Context, who auth.Identity) error
	LogoutAll(ctx context.Context, who auth.Identity) error
	Sessions(ctx context.Context, who auth.Identity) ([]store.Session, error)
	EndSession(ctx context.Context, who auth.Identity, sid string) error
}

var (
	_ Accounts    = (*auth.Accounts)(nil)
	_ ChatService = (*chat.Service)(nil)
	_ Files       = (*files.Service)(nil)
)

// Deps is what the router needs.
type Deps struct {
	Log      *slog.Logger
	Accounts Accounts
	Users    UserStore
	Presence Presence
	Chats    ChatService
	// Files keeps uploads and avatars; nil leaves those routes out.
	Files Files
	// Ready lists what /readyz pings (database, cache).
	Ready map[string]Pinger
	// Registry serves /metrics; Metrics is registered on it.
	Registry *prometheus.Registry
	// CORSOrigins: empty allows any origin without credentials; otherwise
	// exactly these origins, with credentials.
	CORSOrigins []string
	// SecureCookies marks the token cookie Secure (COOKIE_SECURE: behind a
	// TLS proxy); a request that arrives over TLS gets a Secure one anyway.
	SecureCookies bool
	// Socket serves Socket.IO at /socket.io/; it answers CORS itself.
	Socket http.Handler
	// Limits are the per-address flood limits.
	Limits Limits
	// APIs are further APIs on the same router under /api, each with its
	// own routes, auth and error shape (the MERN app's, package mern).
	APIs []func(r chi.Router)
	// WebRoot, when set, is a folder with a built single-page app served
	// at / instead of the embedded client.
	WebRoot string
}

type server struct {
	log           *slog.Logger
	accounts      Accounts
	users         UserStore
	presence      Presence
	chats         ChatService
	ready         map[string]Pinger
	metrics       *Metrics
	secureCookies bool
	files         Files
	limits        Limits
}

// NewRouter returns the whole HTTP handler.
func NewRouter(d Deps) http.Handler {
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	s := &server{
		log: d.Log, accounts: d.Accounts, users: d.Users, presence: d.Presence,
		chats: d.Chats, ready: d.Ready, metrics: NewMetrics(d.Registry), secureCookies: d.SecureCookies,
		files: d.Files, limits: d.Limits,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.presence == nil {
		s.presence = noPresence{}
	}
	r := chi.NewRouter()
	r.Use(s.recoverer, s.observe)
	notFound := s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return apperr.New(apperr.NotFound, "no such route")
	})
	r.NotFound(notFound)
	r.MethodNotAllowed(s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return &apperr.Error{Code: apperr.InvalidInput, Message: "method not allowed", Status: http.StatusMethodNotAllowed}
	}))

	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	r.Get("/readyz", s.readyz)
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{}))

	r.Route("/api", func(r chi.Router) {
		// Only /api reads the client address (its limits, the login
		// throttle); sockets, static files and probes do not pay for it.
		r.Use(s.withClientAddr, s.limitREST)
		r.Post("/auth/signup", s.handle(s.signup))
		r.Post("/auth/login", s.handle(s.login))
		r.Group(func(r chi.Router) {
			r.Use(s.requireAuth)
			r.Post("/auth/logout", s.handle(s.logout))
			r.Post("/auth/logout-all", s.handle(s.logoutAll))
			r.Get("/auth/sessions", s.handle(s.listSessions))
			r.Delete("/auth/sessions/{id}", s.handle(s.endSession))
			r.Get("/me", s.handle(s.getMe))
			r.Patch("/me", s.handle(s.patchMe))
			r.Get("/users", s.handle(s.searchUsers))
			r.Get("/users/{id}", s.handle(s.getUser))
			if s.chats != nil {
				s.chatRoutes(r)
			}
			if s.files != nil {
				s.fileRoutes(r)
			}
		})
		for _, api := range d.APIs {
			api(r)
		}
	})

	if d.WebRoot != "" {
		app := newSPA(d.WebRoot, notFound)
		r.NotFound(app.ServeHTTP)
		r.Get("/", app.ServeHTTP)
		r.Head("/", app.ServeHTTP)
	} else {
		StaticRoutes(r)
	}
	if d.Socket == nil {
		return corsHandler(d.CORSOrigins).Handler(r)
	}
	r.Handle("/socket.io/*", d.Socket)
	withCORS := corsHandler(d.CORSOrigins).Handler(r)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// The Socket.IO engine answers CORS by the same rules itself; a
		// second set of CORS headers would make browsers refuse both.
		if req.URL.Path == "/socket.io/" {
			r.ServeHTTP(w, req)
			return
		}
		withCORS.ServeHTTP(w, req)
	})
}

func corsHandler(origins []string) *cors.Cors {
	opts := cors.Options{
		AllowedMethods: []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodHead},
		AllowedHeaders: []string{"Authorization", "Content-Type", "Range", "If-None-Match", "If-Range"},
		ExposedHeaders: []string{"Retry-After", "Content-Disposition", "Content-Range", "Content-Length", "ETag", "Accept-Ranges"},
		MaxAge:         600,
	}
	if len(origins) == 0 {
		opts.AllowedOrigins = []string{"*"}
	} else {
		opts.AllowedOrigins = origins
		opts.AllowCredentials = true
	}
	return cors.New(opts)
}

func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{}
	ok := true
	for name, p := range s.ready {
		if err := p.Ping(ctx); err != nil {
			s.log.Warn("readiness check failed", "check", name, "err", err)
			checks[name] = "unreachable"
			ok = false
		} else {
			checks[name] = "ok"
		}
	}
	if !ok {
		writeJSON(w, http.StatusServiceUnavailable, struct {
			apperr.BodyError `json:"error"`
			Checks           map[string]string `json:"checks"`
		}{apperr.BodyError{Code: apperr.Unavailable, Message: "not ready"}, checks})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "checks": checks})
}
