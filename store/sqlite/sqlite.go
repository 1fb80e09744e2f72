// Package sqlite is Parley's embedded storage engine: one SQLite database
// file, driven through modernc.org/sqlite (pure Go, no cgo).
//
// SQLite admits one writer at a time. Rather than let several connections
// race for the write lock (and spin in busy_timeout or fail with
// SQLITE_BUSY when a read transaction tries to upgrade), every write goes
// through a pool of exactly one connection, so writers queue in Go instead.
// Reads use their own pool: in WAL mode readers never wait for the writer, so
// a long InsertMessages batch or a file upload never stalls History.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/parley-chat/parley/store"
)

// Store is a store.Store on one SQLite file.
type Store struct {
	w *sql.DB // exactly one connection: every write, in order
	r *sql.DB // query_only connections for reads
	q stmts
}

// stmts are the hot statements (a socket handshake's, a send's), prepared
// once when the store opens. database/sql keeps a statement prepared on
// each connection it has run on, so SQLite parses it once per connection
// instead of on every call (the parse was 13% of a handshake's CPU).
// They are prepared up front, never on first use: preparing takes a
// connection of the pool, and a caller inside a transaction may hold the
// writer's only one.
type stmts struct {
	// Readers.
	sessionByID, chatsByMember, chatByID *sql.Stmt
	// The writer.
	setLastSeen, insertMessage, insertMessageFile *sql.Stmt

	all []*sql.Stmt
}

func (q *stmts) prepare(ctx context.Context, w, r *sql.DB) error {
	for _, p := range []struct {
		dst   **sql.Stmt
		db    *sql.DB
		query string
	}{
		{&q.sessionByID, r, sessionByIDQuery},
		{&q.chatsByMember, r, chatsByMemberQuery},
		{&q.chatByID, r, chatByIDQuery},
		{&q.setLastSeen, w, setLastSeenQuery},
		{&q.insertMessage, w, insertMessageQuery},
		{&q.insertMessageFile, w, insertMessageFileQuery},
	} {
		st, err := p.db.PrepareContext(ctx, p.query)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", p.query, err)
		}
		*p.dst = st
		q.all = append(q.all, st)
	}
	return nil
}

func (q *stmts) close() error {
	var errs []error
	for _, st := range q.all {
		errs = append(errs, st.Close())
	}
	q.all = nil
	return errors.Join(errs...)
}

var _ store.Store = (*Store)(nil)

// busyTimeout only matters when another process holds the file (a backup,
// the sqlite3 shell): inside this process writes already queue on w.
const busyTimeout = 10 * time.Second

// Open opens (creating it and its directory if need be) the database at path
// and brings its schema up to date.
func Open(ctx context.Context, path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("sqlite: create directory: %w", err)
	}

	pragmas := []string{
		fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()),
		"foreign_keys(1)",
	}
	w, err := sql.Open("sqlite", dsn(abs, append(pragmas,
		"journal_mode(WAL)",
		// In WAL mode NORMAL syncs the WAL only at checkpoints, not at every
		// commit. A commit is still written to the WAL (in the OS page cache)
		// before it returns, so a killed process (kill -9, crash, OOM) loses
		// nothing; only an OS crash or power cut can lose the last commits,
		// and even then the database stays consistent. That trade buys cheap
		// commits, which per-message writes need.
		"synchronous(NORMAL)",
	), "immediate"))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}

	// The read pool is opened after the writer has switched the file to WAL
	// and migrated it, so readers never see an old schema.
	r, err := sql.Open("sqlite", dsn(abs, append(pragmas, "query_only(1)"), ""))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s for reading: %w", abs, err)
	}
	readers := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	r.SetConnMaxIdleTime(0)
	r.SetConnMaxLifetime(0)

	s := &Store{w: w, r: r}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	if err := s.q.prepare(ctx, w, r); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	// An upload cut short by a crash leaves an incomplete file behind; no
	// upload can be running yet, so every incomplete file is such a leftover.
	if _, err := w.ExecContext(ctx, `DELETE FROM files WHERE complete = 0`); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open %s: drop unfinished uploads: %w", abs, err)
	}
	return s, nil
}

func dsn(path string, pragmas []string, txlock string) string {
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	if txlock != "" {
		// BEGIN IMMEDIATE takes the write lock up front: a deferred
		// transaction that reads first and writes later can fail with
		// SQLITE_BUSY on the upgrade without ever consulting busy_timeout.
		q.Set("_txlock", txlock)
	}
	// A file: URI with an escaped path, so a '?' or '#' in the path cannot
	// be taken for the start of the parameters.
	return (&url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}).String()
}

// Ping checks both pools.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping writer: %w", err)
	}
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping readers: %w", err)
	}
	return nil
}

// Close closes the readers first, so that the final checkpoint can fold the
// whole WAL back into the database file and truncate it: the file is then
// complete on its own, for backups that copy only the .db.
func (s *Store) Close() error {
	errQ := s.q.close()
	errR := s.r.Close()
	_, errCk := s.w.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	errW := s.w.Close()
	if err := errors.Join(errQ, errR, errCk, errW); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// migrations are applied in order, each once; PRAGMA user_version counts the
// applied ones. Append only: never edit a migration that has shipped.
var migrations = []string{
	// 1: the initial schema.
	`
CREATE TABLE users (
	id                 TEXT NOT NULL PRIMARY KEY,
	username           TEXT NOT NULL,
	email              TEXT NOT NULL,
	display_name       TEXT NOT NULL,
	display_name_lower TEXT NOT NULL, -- lower-cased in Go: SQLite's lower() is ASCII-only
	password_hash      TEXT NOT NULL,
	avatar_file_id     TEXT NOT NULL DEFAULT '',
	last_seen_at       INTEGER,       -- unix ms, NULL when never seen
	created_at         INTEGER
);
CREATE UNIQUE INDEX users_username ON users (lower(username));
CREATE UNIQUE INDEX users_email ON users (lower(email));
CREATE INDEX users_display_name_lower ON users (display_name_lower);

CREATE TABLE sessions (
	id           TEXT NOT NULL PRIMARY KEY,
	user_id      TEXT NOT NULL,
	user_agent   TEXT NOT NULL,
	created_at   INTEGER,
	last_seen_at INTEGER,
	expires_at   INTEGER
);
CREATE INDEX sessions_user ON sessions (user_id, created_at);

CREATE TABLE chats (
	id         TEXT NOT NULL PRIMARY KEY,
	type       TEXT NOT NULL,
	name       TEXT NOT NULL,
	direct_key TEXT NOT NULL,
	created_at INTEGER
);
CREATE UNIQUE INDEX chats_direct_key ON chats (direct_key);

-- A rowid table, not WITHOUT ROWID: rowid order is join order, the order
-- members are listed in.
CREATE TABLE chat_members (
	chat_id  TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
	user_id  TEXT NOT NULL,
	role     TEXT NOT NULL,
	read_seq INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (chat_id, user_id)
);
CREATE INDEX chat_members_user ON chat_members (user_id);

-- No foreign keys to users or chats: the MongoDB engine has none, and the
-- two engines must accept the same writes.
CREATE TABLE messages (
	id            TEXT NOT NULL PRIMARY KEY,
	chat_id       TEXT NOT NULL,
	seq           INTEGER NOT NULL,
	sender_id     TEXT NOT NULL,
	text          TEXT NOT NULL,
	attachments   TEXT,    -- JSON array, NULL when none
	client_msg_id TEXT,    -- NULL when the client sent none: NULLs never collide
	created_at    INTEGER
);
CREATE UNIQUE INDEX messages_chat_seq ON messages (chat_id, seq);
CREATE UNIQUE INDEX messages_client_msg_id ON messages (chat_id, sender_id, client_msg_id)
	WHERE client_msg_id IS NOT NULL;

-- Which chats carry which file, so ChatsWithFile is an index lookup rather
-- than a scan of every attachment list in the chats.
CREATE TABLE message_files (
	file_id TEXT NOT NULL,
	chat_id TEXT NOT NULL,
	seq     INTEGER NOT NULL,
	PRIMARY KEY (file_id, chat_id, seq)
) WITHOUT ROWID;

CREATE TABLE files (
	id           TEXT NOT NULL PRIMARY KEY,
	owner_id     TEXT NOT NULL,
	name         TEXT NOT NULL,
	size         INTEGER NOT NULL DEFAULT 0,
	content_type TEXT NOT NULL,
	kind         TEXT NOT NULL,
	chunk_size   INTEGER NOT NULL,
	created_at   INTEGER,
	attached     INTEGER NOT NULL DEFAULT 0,
	complete     INTEGER NOT NULL DEFAULT 0 -- 0 while the upload runs: invisible
);
CREATE INDEX files_unattached ON files (created_at)
	WHERE kind = 'attachment' AND attached = 0 AND complete = 1;
CREATE INDEX files_incomplete ON files (id) WHERE complete = 0;

CREATE TABLE file_chunks (
	file_id TEXT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
	n       INTEGER NOT NULL,
	data    BLOB NOT NULL,
	PRIMARY KEY (file_id, n)
);
`,
	// 2: notes of ended sessions whose cache entries may outlive them.
	`
CREATE TABLE session_purges (
	session_id TEXT NOT NULL PRIMARY KEY,
	user_id    TEXT NOT NULL,
	expires_at INTEGER,
	pending    INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX session_purges_pending ON session_purges (session_id) WHERE pending = 1;
`,
	// 3: an external picture URL per user (the MERN app's pic).
	`ALTER TABLE users ADD COLUMN picture_url TEXT NOT NULL DEFAULT '';`,
}

func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("migrate: read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("migrate: database schema version %d is newer than this build knows (%d)", version, len(migrations))
	}
	if version == len(migrations) {
		return nil
	}
	for i := version; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migrate: migration %d: %w", i+1, err)
		}
	}
	// PRAGMA takes no bound parameters; the value is an int we control.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, len(migrations))); err != nil {
		return fmt.Errorf("migrate: set schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}

// conflict maps a unique-constraint failure to the store invariant it
// guards, by the index or columns SQLite names in its message; ok is false
// when err is no unique-constraint failure.
func conflict(err error) (c store.Conflict, ok bool) {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return "", false
	}
	if code := se.Code(); code != sqlite3.SQLITE_CONSTRAINT_UNIQUE && code != sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY {
		return "", false
	}
	msg := se.Error()
	has := func(subs ...string) bool {
		for _, sub := range subs {
			if strings.Contains(msg, sub) {
				return true
			}
		}
		return false
	}
	switch {
	case has("messages.client_msg_id", "messages_client_msg_id"):
		return store.ConflictClientMsgID, true
	case has("messages.seq", "messages_chat_seq"):
		return store.ConflictSeq, true
	case has("users.username", "users_username"):
		return store.ConflictUsername, true
	case has("users.email", "users_email"):
		return store.ConflictEmail, true
	case has("chats.direct_key", "chats_direct_key"):
		return store.ConflictDirectKey, true
	case has(".id"):
		return store.ConflictID, true
	}
	return store.ConflictUnknown, true
}

// wrap names the operation and turns unique-constraint failures into
// *store.ConflictError (keeping SQLite's message for the log).
func wrap(op string, err error) error {
	if c, ok := conflict(err); ok {
		return fmt.Errorf("sqlite: %s: %w (%v)", op, &store.ConflictError{On: c}, err)
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

func notFound(op string) error { return fmt.Errorf("sqlite: %s: %w", op, store.ErrNotFound) }

// Times are stored as unix milliseconds, the precision MongoDB keeps, so both
// engines hand back the same instant; the zero time is stored as NULL.
func toMS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func fromMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

// nullable stores "" as NULL, for columns whose unique index must ignore
// empty values.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// idList passes a list of ids as one JSON parameter, expanded in SQL with
// json_each: no statement text built per call and no limit on the count.
func idList(ids []string) string {
	if ids == nil {
		ids = []string{}
	}
	b, _ := json.Marshal(ids) // []string always marshals
	return string(b)
}

// affectedOne reports whether res changed a row, for "ErrNotFound when
// nothing matched".
func affectedOne(res sql.Result) (bool, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	return n > 0, nil
}
