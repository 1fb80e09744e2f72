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
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parley-chat/parley/auth"
	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/events"
	"github.com/parley-chat/parley/files"
	"github.com/parley-chat/parley/internal/app"
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
	if len(os.Args) > 1 && os.Args[1] == "import" {
		os.Exit(importCommand(".", os.Args[2:], os.Environ(), os.Stdout, os.Stderr))
	}
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
// not nil it receives the address the server listens on. Each step's
// cleanup is deferred here, so shutdown runs them in reverse: the HTTP
// server drains (closing the sockets first), the sweep stops, the services
// stop, then the cache and the store close.
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
	cache, closeCache, err := openCache(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeCache()
	secret, err := cfg.jwtSecret(log)
	if err != nil {
		return err
	}
	addrs, err := clientaddr.New(cfg.TrustedProxies)
	if err != nil {
		return &ConfigError{Var: "TRUSTED_PROXIES", Reason: err.Error()}
	}
	a, err := app.Build(app.Options{
		Log: log, Store: st, Cache: cache.sessions, Limiter: cache.limiter,
		Secret: secret, BcryptCost: cfg.BcryptCost, TokenTTL: cfg.TokenTTL, CORSOrigins: cfg.CORSOrigins,
		FileLimits: files.Limits{Upload: cfg.UploadMaxBytes, Avatar: cfg.AvatarMaxBytes},
		ChatLimits: chat.Limits{
			MaxText: cfg.MessageMaxChars, MaxAttachments: cfg.MessageMaxAttachments, MaxGroup: cfg.GroupMaxMembers,
			MaxPage: cfg.HistoryMaxPage, DefaultPage: cfg.HistoryDefaultPage, MaxClientMsgID: cfg.ClientMsgIDMaxChars,
		},
		MaxPacketBytes: cfg.SocketMaxPacketBytes,
		CookieSecure:   cfg.CookieSecure,
		RecoveryWindow: cfg.RecoveryWindow, SocketQueueBytes: cfg.SocketQueueBytes,
		Throttle: auth.ThrottleLimits{
			PerAccount: cfg.LoginFailuresAccount, PerAddress: cfg.LoginFailuresAddress, Window: cfg.LoginFailureWindow,
		},
		Sockets: events.Limits{
			Send: cfg.LimitMessageSend.Limit, Typing: cfg.LimitTyping.Limit, Handshakes: cfg.LimitHandshakes.Limit,
			SocketsPerUser: cfg.MaxSocketsPerUser, SocketsPerAddress: cfg.MaxSocketsPerAddress,
		},
		REST:                  web.Limits{REST: cfg.LimitREST.Limit, Signups: cfg.LimitSignups.Limit},
		Addrs:                 addrs,
		SessionReconcileEvery: cfg.SessionReconcileEvery,
		Redis:                 cache.redis,
		WebRoot:               cfg.WebRoot, MERNSetupTimeout: cfg.MERNSetupTimeout,
	})
	if err != nil {
		return err
	}
	defer a.Close()
	defer runSweeper(ctx, cfg, st, log)()
	if cfg.PProf {
		stopPProf, err := servePProf(cfg.PProfAddr, log)
		if err != nil {
			return err
		}
		defer stopPProf()
	}
	return serve(ctx, cfg, log, a.Handler, a.Sockets.Shutdown, started)
}

// servePProf serves net/http/pprof on its own loopback listener (PPROF=1),
// never on the public port.
func servePProf(addr string, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &ConfigError{Var: "PPROF_ADDR", Reason: err.Error()}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("pprof listening", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}

// caches are what Redis backs when REDIS_URL is set, else this process.
type caches struct {
	sessions app.Cache
	limiter  ratelimit.Limiter
	// redis is nil without REDIS_URL: a single node.
	redis *redis.Client
}

// openCache connects to Redis when configured; the returned func closes it.
func openCache(ctx context.Context, cfg Config, log *slog.Logger) (caches, func(), error) {
	if cfg.RedisURL == "" {
		log.Info("REDIS_URL is not set: in-process session cache, single node")
		return caches{sessions: session.NewMemoryCache(), limiter: ratelimit.NewMemory(nil)}, func() {}, nil
	}
	rdb, err := redisconn.Open(cfg.RedisURL)
	if err != nil {
		return caches{}, nil, &ConfigError{Var: "REDIS_URL", Reason: "invalid value: " + err.Error()}
	}
	redis.SetLogger(redisLogger{log})
	if err := rdb.Ping(ctx).Err(); err != nil {
		log.Warn("redis unreachable at start-up; sessions are checked against the database until it is back", "err", err)
	}
	c := caches{sessions: session.NewRedisCache(rdb), limiter: ratelimit.NewFallback(ratelimit.NewRedis(rdb), log), redis: rdb}
	return c, func() { _ = rdb.Close() }, nil
}

// runSweeper removes uploads never attached, a few times per
// ORPHAN_FILE_TTL and at most hourly, until the returned func is called
// (before the store closes).
func runSweeper(ctx context.Context, cfg Config, st store.Store, log *slog.Logger) (stop func()) {
	sweepCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		files.RunSweeper(sweepCtx, st, min(max(cfg.OrphanFileTTL/4, time.Minute), time.Hour), cfg.OrphanFileTTL, log)
		close(done)
	}()
	return func() { cancel(); <-done }
}

// serve listens and serves handler until ctx ends, then drains in-flight
// requests for at most SHUTDOWN_TIMEOUT. drainSockets runs beside the HTTP
// drain, bounded by the same deadline.
func serve(ctx context.Context, cfg Config, log *slog.Logger, handler http.Handler, drainSockets func(context.Context), started chan<- string) error {
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
	// still run (they stop in run's deferred steps): the socket server stops
	// taking events, acks those in flight, then closes its sockets, which
	// also ends the long-polling requests Shutdown waits on.
	socketsDone := make(chan struct{})
	go func() { drainSockets(shutdownCtx); close(socketsDone) }()
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
