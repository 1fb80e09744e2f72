package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"github.com/parley-chat/parley/mern/importer"
)

// Exit codes of `parley import`.
const (
	exitImported = 0 // everything read was imported or already there
	exitFailed   = 1 // the import could not go on
	exitUsage    = 2
	exitRefused  = 3 // finished, but some documents were refused (listed)
)

const importUsage = `usage: parley import mern --from mongodb://host:27017/chat [--db chat]

Imports the database of a MERN chat app (piyush-eon/mern-chat-app: its users,
chats and messages) into Parley's configured store (MONGO_URI, or SQLite in
DATA_DIR), keeping ids and password hashes. Safe to run again: nothing is
written twice. See docs/mern.md.
`

// importCommand runs `parley import <kind> ...` and returns the exit code.
// dir is where a .env file is read from (the working directory; a test's
// own directory in tests, so a developer's .env cannot point it elsewhere).
func importCommand(dir string, args, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "mern" {
		fmt.Fprint(stderr, importUsage)
		return exitUsage
	}
	fs := flag.NewFlagSet("parley import mern", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, importUsage); fs.PrintDefaults() }
	from := fs.String("from", "", "MongoDB URI of the MERN app's database (required)")
	db := fs.String("db", "", "database name (default: the URI's path, else \"chat\")")
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	if *from == "" || fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	name, err := sourceDatabase(*from, *db)
	if err != nil {
		fmt.Fprintf(stderr, "parley import mern: --from: %v\n", err)
		return exitUsage
	}
	cfg, err := loadConfig(dir, environ)
	if err != nil {
		fmt.Fprintf(stderr, "parley: configuration: %v\n", err)
		return exitUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sum, err := runImport(ctx, cfg, log, *from, name, stderr)
	if sum != nil {
		sum.Print(stdout)
	}
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "parley import: %v\n", err)
		return exitFailed
	case len(sum.Problems) > 0:
		return exitRefused
	}
	return exitImported
}

// runImport imports the MERN database db at from into cfg's store,
// writing progress lines to progress.
func runImport(ctx context.Context, cfg Config, log *slog.Logger, from, db string, progress io.Writer) (*importer.Summary, error) {
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := st.Close(); cerr != nil {
			log.Error("close store", "err", cerr)
		}
	}()
	client, src, err := importer.Connect(ctx, from, db)
	if err != nil {
		return nil, err
	}
	defer func() { _ = client.Disconnect(context.WithoutCancel(ctx)) }()
	fmt.Fprintf(progress, "importing MERN database %q into the %s store\n", db, storeName(cfg))
	sum, err := importer.New(src, st, progress).Run(ctx)
	if errors.Is(err, context.Canceled) {
		err = fmt.Errorf("interrupted; run it again to finish (nothing is written twice): %w", err)
	}
	return sum, err
}

// sourceDatabase is the database to read: --db, else the URI's path, else
// "chat" (the app's default). The URI is read by the driver's own parser,
// so one it accepts (several hosts, say) never falls back to another
// database unnoticed.
func sourceDatabase(from, db string) (string, error) {
	cs, err := connstring.Parse(from)
	if err != nil {
		return "", err
	}
	return cmp.Or(db, cs.Database, "chat"), nil
}
