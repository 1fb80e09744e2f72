// Command ferretdb serves the tests' embedded FerretDB (SQLite handler) on
// 127.0.0.1 for a load run of several Parley nodes, which need one
// MongoDB-wire database between them (the embedded SQLite store is one
// process's). It prints the MongoDB URI on stdout and serves until SIGINT or
// SIGTERM. Not for production: see docs/deploy.md.
//
//	go run ./scripts/ferretdb -dir /tmp/ferret
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
	dir := flag.String("dir", "", "data directory (required)")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "ferretdb: -dir is required")
		os.Exit(2)
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *addr},
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		Handler:   "sqlite",
		SQLiteURL: "file:" + *dir + "/",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Println(f.MongoDBURI())
	f.Run(ctx)
}
