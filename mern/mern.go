// Package mern speaks the REST API of the most copied MERN chat app
// (piyush-eon/mern-chat-app, "Talk-A-Tive") beside Parley's own API, so that
// its React frontend runs against Parley unchanged.
//
// It owns nothing of its own: signup, login and sessions go through the same
// account service as Parley's API, chats and messages through the same chat
// service (so Parley's permission rules apply), and both APIs see one set of
// data. What this package adds is the app's dialect: its routes, its request
// shapes, its response shapes (`_id`, bare arrays) and its `{message}`
// errors, mapped from Parley's errors in one place (errors.go). Rendering
// lives in render.go and is shared with the socket layer, which delivers
// `message recieved` in the same shape (see events/mern.go).
package mern

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/parley-chat/parley/auth"
	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/store"
)

// Accounts is the account service as the MERN API uses it.
type Accounts interface {
	Signup(ctx context.Context, in auth.SignupInput) (*auth.Grant, error)
	LoginApp(ctx context.Context, app, login, password, client, userAgent string) (*auth.Grant, error)
	Authenticate(ctx context.Context, token string) (auth.Identity, error)
}

// Chats is the chat service as the MERN API uses it.
type Chats interface {
	List(ctx context.Context, userID string) ([]chat.View, error)
	Get(ctx context.Context, userID, chatID string) (chat.View, error)
	CreateDirect(ctx context.Context, userID, otherID string) (chat.View, bool, error)
	CreateGroup(ctx context.Context, userID string, name *string, users []string) (chat.View, error)
	Rename(ctx context.Context, userID, chatID string, name *string) (chat.View, error)
	AddMembers(ctx context.Context, userID, chatID string, userIDs []string) (chat.View, error)
	RemoveMember(ctx context.Context, userID, chatID, targetID string) error
	Send(ctx context.Context, userID, origin string, in chat.SendInput) (chat.Sent, error)
	// ChatOf is the chat with its members, for a member.
	ChatOf(ctx context.Context, userID, chatID string) (*store.Chat, error)
	History(ctx context.Context, userID, chatID string, q chat.HistoryQuery) ([]store.Message, bool, error)
}

var (
	_ Accounts = (*auth.Accounts)(nil)
	_ Chats    = (*chat.Service)(nil)
)

// Store is what the MERN API reads directly, as web/ does: users, for search
// and for the app's populated shapes. Everything else goes through Accounts
// and Chats.
type Store interface {
	UsersByIDs(ctx context.Context, ids []string) ([]store.User, error)
	UsersContaining(ctx context.Context, sub string, limit int) ([]store.User, error)
}

// Deps is what the MERN API needs.
type Deps struct {
	Log      *slog.Logger
	Accounts Accounts
	Chats    Chats
	Store    Store
	// SecureCookies marks the token cookie Secure (behind TLS).
	SecureCookies bool
}

// API serves the MERN routes.
type API struct {
	log      *slog.Logger
	accounts Accounts
	chats    Chats
	users    Store
	render   *Renderer
	secure   bool
}

// New returns the MERN API.
func New(d Deps) *API {
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{log: log, accounts: d.Accounts, chats: d.Chats, users: d.Store, render: NewRenderer(d.Store, d.Chats), secure: d.SecureCookies}
}

// Renderer is the API's renderer, for the socket layer's deliveries.
func (a *API) Renderer() *Renderer { return a.render }

// Routes registers the app's routes on r, the router of /api: /api/user,
// /api/chat and /api/message. They sit beside Parley's /api/users and
// /api/chats without overlapping them.
func (a *API) Routes(r chi.Router) {
	r.Post("/user", a.handle(a.signup))
	r.Post("/user/login", a.handle(a.login))
	r.Group(func(r chi.Router) {
		r.Use(a.requireAuth)
		r.Get("/user", a.handle(a.searchUsers))
		r.Get("/chat", a.handle(a.listChats))
		r.Post("/chat", a.handle(a.accessChat))
		r.Post("/chat/group", a.handle(a.createGroup))
		r.Put("/chat/rename", a.handle(a.renameGroup))
		r.Put("/chat/groupadd", a.handle(a.addToGroup))
		r.Put("/chat/groupremove", a.handle(a.removeFromGroup))
		r.Get("/message/{chatId}", a.handle(a.allMessages))
		r.Post("/message", a.handle(a.sendMessage))
	})
}

// handler is a route that returns its error; handle answers it.
type handler func(w http.ResponseWriter, r *http.Request) error

func (a *API) handle(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			a.writeError(w, r, err)
		}
	}
}

type identityKey struct{}

func identityFrom(ctx context.Context) auth.Identity {
	id, _ := ctx.Value(identityKey{}).(auth.Identity)
	return id
}
