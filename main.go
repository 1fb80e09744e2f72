// Command parley is a real-time chat server that socket.io clients use
// unchanged. See README.md for the two commands and the configuration.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/parley-chat/parley/auth"
	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/events"
	"github.com/parley-chat/parley/internal/clientaddr"
	"github.com/parley-chat/parley/internal/ratelimit"
	"github.com/parley-chat/parley/internal/redisconn"
	"github.com/parley-chat/parley/session"
	"github.com/parley-chat/parley/store"
	mongostore "github.com/parley-chat/parley/store/mongo"
	"github.com/parley-chat/parley/store/sqlite"
	"github.com/parley-chat/parley/web"
)

func main() {
	cfg, err := loadConfig(".", os.Environ())
	if err != nil {
		fmt.Fprintf(os.Stderr, "parley: configuration: %v\n", err)
		os.Exit(2)
	}
	log := newLogger(cfg, os.Stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log, nil); err != nil {
		log.Error("parley stopped", "err", err)
		os.Exit(1)
	}
}

func newLogger(cfg Config, w *os.File) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// run serves until ctx ends, then shuts down gracefully. When started is
// not nil it receives the address the server listens on.
func run(ctx context.Context, cfg Config, log *slog.Logger, started chan<- string) error {
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("close store", "err", err)
		}
	}()

	var (
		cache   session.Cache     = session.NewMemoryCache()
		limiter ratelimit.Limiter = ratelimit.NewMemory(nil)
		cacheP  web.Pinger        = cache
		rdb     *redis.Client
	)
	if cfg.RedisURL != "" {
		rdb, err = redisconn.Open(cfg.RedisURL)
		if err != nil {
			return &ConfigError{Var: "REDIS_URL", Reason: "invalid value: " + err.Error()}
		}
		redis.SetLogger(redisLogger{log})
		defer rdb.Close()
		if err := rdb.Ping(ctx).Err(); err != nil {
			log.Warn("redis unreachable at start-up; sessions are checked against the database until it is back", "err", err)
		}
		cache = session.NewRedisCache(rdb)
		cacheP = cache
		limiter = ratelimit.NewFallback(ratelimit.NewRedis(rdb), log)
	} else {
		log.Info("REDIS_URL is not set: in-process session cache, single node")
	}

	secret, err := cfg.jwtSecret(log)
	if err != nil {
		return err
	}
	passwords, err := auth.NewPasswords(cfg.BcryptCost)
	if err != nil {
		return &ConfigError{Var: "BCRYPT_COST", Reason: err.Error()}
	}
	sessions := session.NewManager(st, cache, cfg.TokenTTL, log)
	// Replays session purge notes against the cache (see package session);
	// stops before the store closes.
	sessCtx, stopSess := context.WithCancel(context.WithoutCancel(ctx))
	sessDone := make(chan struct{})
	go func() { sessions.Run(sessCtx, cfg.SessionReconcileEvery); close(sessDone) }()
	defer func() { stopSess(); <-sessDone }()
	throttle := auth.NewThrottle(limiter, auth.ThrottleLimits{
		PerAccount: cfg.LoginFailuresAccount, PerAddress: cfg.LoginFailuresAddress, Window: cfg.LoginFailureWindow,
	})
	accounts := auth.NewAccounts(st, sessions, passwords, auth.NewTokens(secret), throttle, log)
	addrs, err := clientaddr.New(cfg.TrustedProxies)
	if err != nil {
		return &ConfigError{Var: "TRUSTED_PROXIES", Reason: err.Error()}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "parley_password_checks_total", Help: "Passwords compared (bcrypt): the login throttle bounds these per account.",
	}, func() float64 { return float64(passwords.Checks()) }))

	chats := chat.New(st, nil, chat.DefaultLimits, log)
	sock, err := events.New(events.Config{CORSOrigins: cfg.CORSOrigins, Limits: events.Limits{
		Send: cfg.LimitMessageSend.Limit, Typing: cfg.LimitTyping.Limit, Handshakes: cfg.LimitHandshakes.Limit,
		SocketsPerUser: cfg.MaxSocketsPerUser, SocketsPerAddress: cfg.MaxSocketsPerAddress,
	}}, events.Deps{
		Log: log, Accounts: accounts, Chats: chats, Users: st, Sessions: sessions, Registerer: reg,
		Limiter: limiter, Addrs: addrs,
	})
	if err != nil {
		return fmt.Errorf("socket.io server: %w", err)
	}
	defer sock.Close()
	chats.SetBroadcaster(sock)
	chatCtx, stopChats := context.WithCancel(context.WithoutCancel(ctx))
	chatsDone := make(chan struct{})
	go func() { chats.Run(chatCtx); close(chatsDone) }()
	defer func() { stopChats(); <-chatsDone }()

	handler := web.NewRouter(web.Deps{
		Log: log, Accounts: accounts, Sessions: sessions, Users: st, Chats: chats, Presence: sock, Socket: sock.Handler(),
		Files: st, UploadMaxBytes: cfg.UploadMaxBytes, AvatarMaxBytes: cfg.AvatarMaxBytes,
		Ready:       map[string]web.Pinger{"database": st, "cache": cacheP},
		Registry:    reg,
		CORSOrigins: cfg.CORSOrigins,
		Limits:      web.Limits{Limiter: limiter, Addrs: addrs, REST: cfg.LimitREST.Limit, Signups: cfg.LimitSignups.Limit},
	})

	// Uploads never attached are swept a few times per ORPHAN_FILE_TTL, at
	// most hourly; the sweep stops before the store closes.
	sweepCtx, stopSweep := context.WithCancel(ctx)
	sweepDone := make(chan struct{})
	go func() {
		web.RunSweeper(sweepCtx, st, min(max(cfg.OrphanFileTTL/4, time.Minute), time.Hour), cfg.OrphanFileTTL, log)
		close(sweepDone)
	}()
	defer func() { stopSweep(); <-sweepDone }()

	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("parley listening", "addr", ln.Addr().String(), "store", storeName(cfg), "cache", cacheName(cfg))
	if started != nil {
		started <- ln.Addr().String()
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests", "grace", cfg.ShutdownGrace)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	// Sockets and REST drain together, while the chat writer and the store
	// still run (they stop in the deferred steps): the socket server stops
	// taking events, acks those in flight, then closes its sockets, which
	// also ends the long-polling requests Shutdown waits on.
	socketsDone := make(chan struct{})
	go func() { sock.Shutdown(shutdownCtx); close(socketsDone) }()
	err = srv.Shutdown(shutdownCtx)
	<-socketsDone
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

func openStore(ctx context.Context, cfg Config, log *slog.Logger) (store.Store, error) {
	if cfg.MongoURI != "" {
		openCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		st, err := mongostore.Open(openCtx, cfg.MongoURI, cfg.MongoDB)
		if err != nil {
			return nil, fmt.Errorf("open MongoDB: %w", err)
		}
		return st, nil
	}
	path := filepath.Join(cfg.DataDir, "parley.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("open embedded database %s: %w", path, err)
	}
	log.Info("MONGO_URI is not set: embedded SQLite store", "file", path)
	return st, nil
}

func storeName(cfg Config) string {
	if cfg.MongoURI != "" {
		return "mongodb"
	}
	return "sqlite"
}

func cacheName(cfg Config) string {
	if cfg.RedisURL != "" {
		return "redis"
	}
	return "memory"
}

// redisLogger sends go-redis's own chatter (pool dial failures, already
// reported by the callers as warnings) to debug.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf("redis: "+format, v...))
}
