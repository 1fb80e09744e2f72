// Package app assembles Parley's services from their dependencies: the
// composition root that main uses (after reading the configuration and
// opening the store and cache) and that the package tests needing the whole
// stack use too (internal/testenv/stack), so both run the same wiring.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/parley-chat/parley/auth"
	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/events"
	"github.com/parley-chat/parley/files"
	"github.com/parley-chat/parley/internal/clientaddr"
	"github.com/parley-chat/parley/internal/ratelimit"
	"github.com/parley-chat/parley/mern"
	"github.com/parley-chat/parley/session"
	"github.com/parley-chat/parley/store"
	"github.com/parley-chat/parley/web"
)

// Cache is the session cache, which /readyz also pings.
type Cache interface {
	session.Cache
	web.Pinger
}

// Options are what the services are built from.
type Options struct {
	Log   *slog.Logger
	Store store.Store
	Cache Cache
	// Limiter holds the login throttle's and the flood limits' budgets
	// (shared through Redis when configured).
	Limiter     ratelimit.Limiter
	Secret      []byte
	BcryptCost  int
	TokenTTL    time.Duration
	CORSOrigins []string
	FileLimits  files.Limits
	// ChatLimits are the limits on messages, groups and history pages;
	// zero: the contract's defaults (chat.DefaultLimits).
	ChatLimits chat.Limits
	// MaxPacketBytes is the largest Socket.IO packet accepted; 0: 1 MB.
	MaxPacketBytes int64
	// CookieSecure marks the token cookie Secure (behind a TLS proxy).
	CookieSecure bool
	// RecoveryWindow turns Socket.IO connection-state recovery on (0: off);
	// SocketQueueBytes bounds one socket's outbound queue (0: the engine's
	// default). See events.Config.
	RecoveryWindow   time.Duration
	SocketQueueBytes int
	// Throttle is the login throttle's budgets; zero: the contract's.
	Throttle auth.ThrottleLimits
	// Sockets and REST are the flood limits (zero: none).
	Sockets events.Limits
	REST    web.Limits
	// Addrs finds client addresses (TRUSTED_PROXIES); nil: the peer.
	Addrs *clientaddr.Resolver
	// SessionReconcileEvery paces the session cache's reconcile; 0: 1s.
	SessionReconcileEvery time.Duration
	// Redis, when set, makes this node one of a cluster on it: the
	// Socket.IO Redis adapter, presence across nodes, notices for each
	// node's caches (docs/deploy.md). Nil: a single node.
	Redis *redis.Client
	// NodeID names this node in the cluster; default a random id.
	NodeID string
	// WebRoot serves a built single-page app at / instead of the embedded
	// client; "" keeps the embedded one.
	WebRoot string
	// MERNSetupTimeout bounds a credential-less socket's wait for the MERN
	// app's setup event; 0 is the events package's default.
	MERNSetupTimeout time.Duration
}

// App is Parley built: Handler serves REST, Socket.IO and the client.
type App struct {
	Handler  http.Handler
	Accounts *auth.Accounts
	Sessions *session.Manager
	Chats    *chat.Service
	Files    *files.Service
	Sockets  *events.Server
	MERN     *mern.API

	stopWriter func()
	cluster    *cluster
}

// Build wires the services and starts the chat writer; Close stops it.
func Build(o Options) (*App, error) {
	passwords, err := auth.NewPasswords(o.BcryptCost)
	if err != nil {
		return nil, fmt.Errorf("passwords: %w", err)
	}
	if o.Limiter == nil {
		o.Limiter = ratelimit.NewMemory(nil)
	}
	if o.Throttle == (auth.ThrottleLimits{}) {
		o.Throttle = auth.DefaultThrottleLimits
	}
	if o.SessionReconcileEvery <= 0 {
		o.SessionReconcileEvery = time.Second
	}
	a := &App{Sessions: session.NewManager(o.Store, o.Cache, o.TokenTTL, o.Log)}
	a.Sessions.Start(o.SessionReconcileEvery)
	a.Accounts = auth.NewAccounts(o.Store, a.Sessions, passwords, auth.NewTokens(o.Secret), auth.NewThrottle(o.Limiter, o.Throttle), o.Log)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "parley_password_checks_total", Help: "Passwords compared (bcrypt): the login throttle bounds these per account.",
	}, func() float64 { return float64(passwords.Checks()) }))

	if o.ChatLimits == (chat.Limits{}) {
		o.ChatLimits = chat.DefaultLimits
	}
	a.Chats = chat.New(o.Store, nil, o.ChatLimits, o.Log)
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "parley_chat_seq_clashes_total",
		Help: "Sends another node's message refused on (chatId, seq), numbered again: several nodes writing one chat at once.",
	}, func() float64 { return float64(a.Chats.SeqClashes()) }))
	a.Files = files.New(o.Store, a.Chats, o.FileLimits, o.Log)
	a.MERN = mern.New(mern.Deps{Log: o.Log, Accounts: a.Accounts, Chats: a.Chats, Store: o.Store, SecureCookies: o.CookieSecure})
	deps := events.Deps{
		Log: o.Log, Accounts: a.Accounts, Chats: a.Chats, Users: o.Store, Sessions: a.Sessions, Registerer: reg,
		Limiter: o.Limiter, Addrs: o.Addrs,
		MERN: a.MERN.Renderer(),
	}
	if o.Redis != nil {
		a.cluster = newCluster(o.Redis, o.NodeID, a.Chats, a.Sessions, o.Log)
		deps.Tracker, deps.Adapter = a.cluster.tracker, a.cluster.adapter
	}
	a.Sockets, err = events.New(events.Config{
		CORSOrigins: o.CORSOrigins, RecoveryWindow: o.RecoveryWindow, SocketQueueBytes: o.SocketQueueBytes,
		MaxHTTPBufferSize: o.MaxPacketBytes,
		Limits:            o.Sockets,
		SetupTimeout:      o.MERNSetupTimeout,
	}, deps)
	if err != nil {
		a.Sessions.Close()
		return nil, fmt.Errorf("socket.io server: %w", err)
	}
	if a.cluster != nil {
		a.cluster.start(a.Sockets)
	}
	a.Chats.SetBroadcaster(a.Sockets)
	a.stopWriter = runChatWriter(a.Chats)

	a.Handler = web.NewRouter(web.Deps{
		Log: o.Log, Accounts: a.Accounts, Users: o.Store, Chats: a.Chats, Presence: a.Sockets,
		Socket: a.Sockets.Handler(), Files: a.Files,
		Ready:         map[string]web.Pinger{"database": o.Store, "cache": o.Cache},
		Registry:      reg,
		CORSOrigins:   o.CORSOrigins,
		SecureCookies: o.CookieSecure,
		Limits:        web.Limits{Limiter: o.Limiter, Addrs: o.Addrs, REST: o.REST.REST, Signups: o.REST.Signups},
		APIs:          []func(chi.Router){a.MERN.Routes},
		WebRoot:       o.WebRoot,
	})
	return a, nil
}

// runChatWriter runs the chat service's writer until the returned func is
// called at shutdown, so sends in flight can finish.
func runChatWriter(chats *chat.Service) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { chats.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

// Close stops the chat writer, the sockets and the session manager's
// retries. Call it after the HTTP server has drained and before the store
// and cache close.
func (a *App) Close() {
	a.stopWriter()
	a.Sockets.Close()
	if a.cluster != nil {
		a.cluster.close()
	}
	a.Sessions.Close()
}
