// Command ferretdb serves the tests' embedded FerretDB on 127.0.0.1 for a
// load run of several Parley nodes, which need one MongoDB-wire database
// between them (the embedded SQLite store is one process's). It prints the
// MongoDB URI on stdout and serves until SIGINT or SIGTERM. Not for
// production: see docs/deploy.md.
//
// The backend is SQLite in -dir, as in the tests, unless -postgresql names a
// PostgreSQL database: FerretDB then pushes every top-level equality filter
// down to PostgreSQL (SQLite gets only _id), so queries on chatId, userId and
// the like are filtered by the database instead of by a scan in FerretDB.
//
//	go run ./scripts/ferretdb -dir /tmp/ferret
//	go run ./scripts/ferretdb -postgresql postgres://postgres@127.0.0.1:5432/parley_load
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	dir := flag.String("dir", "", "SQLite data directory (required unless -postgresql)")
	pgURL := flag.String("postgresql", os.Getenv("FERRETDB_POSTGRESQL_URL"),
		"PostgreSQL URL (an existing database) to use instead of SQLite; default $FERRETDB_POSTGRESQL_URL")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	var level slog.Level
	flag.TextVar(&level, "log-level", slog.LevelError, "log level; debug logs every command received")
	flag.Parse()
	cfg := ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: *addr},
		Logger:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	}
	switch {
	case *pgURL != "":
		cfg.Handler, cfg.PostgreSQLURL = "postgresql", *pgURL
	case *dir != "":
		if err := os.MkdirAll(*dir, 0o700); err != nil {
			fmt.Fprintln(os.Stderr, "ferretdb:", err)
			os.Exit(1)
		}
		cfg.Handler, cfg.SQLiteURL = "sqlite", "file:"+*dir+"/"
	default:
		fmt.Fprintln(os.Stderr, "ferretdb: -dir or -postgresql is required")
		os.Exit(2)
	}
	f, err := ferretdb.New(&cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Println(f.MongoDBURI())
	f.Run(ctx)
}
