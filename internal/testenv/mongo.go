package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

var (
	sharedMongoOnce sync.Once
	sharedMongoURI  string
	sharedMongoErr  error
)

// ferretDirPrefix names FerretDB's data directories; the pid after it lets a
// later test process find directories whose owner has died.
const ferretDirPrefix = "parley-ferretdb-"

// MongoURI returns MONGO_URI when set, else the URI of an embedded FerretDB
// (SQLite handler) this test process starts once. Tests share the server and
// isolate themselves by database: see MongoDatabase.
func MongoURI(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("MONGO_URI"); u != "" {
		return u
	}
	sharedMongoOnce.Do(func() {
		sharedMongoURI, sharedMongoErr = startFerretDB()
	})
	if sharedMongoErr != nil {
		t.Fatalf("testenv: no MONGO_URI and cannot start FerretDB: %v", sharedMongoErr)
	}
	return sharedMongoURI
}

// MongoDatabase returns a fresh database name. FerretDB bounds name length
// and charset, so it is short: "t" and 12 hex digits.
func MongoDatabase(t testing.TB) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("testenv: random database name: %v", err)
	}
	return "t" + hex.EncodeToString(b[:])
}

func startFerretDB() (string, error) {
	// The server lives as long as the test process and there is no TestMain
	// to remove its data when that ends, so each start sweeps the leftovers
	// of processes that are gone instead.
	removeStaleFerretDirs()
	dir, err := os.MkdirTemp("", ferretDirPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", fmt.Errorf("data directory: %w", err)
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		// FerretDB logs each refused command at warn level, with a dump,
		// and the driver's endSessions (which FerretDB lacks) is refused at
		// every disconnect: only errors are worth a line in test output.
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
	})
	if err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	// Run only returns when its context ends, which never happens: the
	// server serves every test of this process.
	go func() { _ = f.Run(context.Background()) }()

	// New already listens, so MongoDBURI does not block; the ping proves the
	// handler answers, not just the socket.
	uri := f.MongoDBURI()
	if err := pingMongo(uri, 30*time.Second); err != nil {
		return "", err
	}
	return uri, nil
}

func pingMongo(uri string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	c, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return fmt.Errorf("connect %s: %w", uri, err)
	}
	defer c.Disconnect(context.Background())
	// The driver waits for server selection within ctx, so a single Ping
	// already retries until the server answers or time runs out.
	if err := c.Ping(ctx, nil); err != nil {
		return fmt.Errorf("ping %s: %w", uri, err)
	}
	return nil
}

// removeStaleFerretDirs deletes data directories whose creating process no
// longer exists. A reused pid only delays a sweep, it never loses live data:
// a live process always matches its own directory.
func removeStaleFerretDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), ferretDirPrefix+"*"))
	for _, d := range dirs {
		rest := strings.TrimPrefix(filepath.Base(d), ferretDirPrefix)
		pidStr, _, ok := strings.Cut(rest, "-")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(d)
		}
	}
}
