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

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/parley-chat/parley/auth"
	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/events"
	"github.com/parley-chat/parley/internal/redisconn"
	"github.com/parley-chat/parley/mern"
	"github.com/parley-chat/parley/session"
	"github.com/parley-chat/parley/store"
	mongostore "github.com/parley-chat/parley/store/mongo"
	"github.com/parley-chat/parley/store/sqlite"
	"github.com/parley-chat/parley/web"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "import" {
		os.Exit(importCommand(os.Args[2:], os.Environ(), os.Stdout, os.Stderr))
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
		cache   session.Cache = session.NewMemoryCache()
		counter auth.Counter  = auth.NewMemoryCounter()
		cacheP  web.Pinger    = cache
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
		counter = auth.NewFallbackCounter(auth.NewRedisCounter(rdb), log)
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
	accounts := auth.NewAccounts(st, sessions, passwords, auth.NewTokens(secret), auth.NewThrottle(counter), log)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	chats := chat.New(st, nil, chat.DefaultLimits, log)
	mernAPI := mern.New(mern.Deps{Log: log, Accounts: accounts, Chats: chats, Store: st})
	sock, err := events.New(events.Config{CORSOrigins: cfg.CORSOrigins, SetupTimeout: cfg.MERNSetupTimeout}, events.Deps{
		Log: log, Accounts: accounts, Chats: chats, Users: st, Sessions: sessions, Registerer: reg,
		MERN: mernAPI.Renderer(),
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
		WebRoot:     cfg.WebRoot,
		Mount:       []func(chi.Router, func(http.Handler) http.Handler){func(r chi.Router, _ func(http.Handler) http.Handler) { mernAPI.Routes(r) }},
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
	// Long-polling requests are open handlers: close the sockets while the
	// server drains, or Shutdown would wait for them.
	srv.RegisterOnShutdown(sock.Close)
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
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
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
