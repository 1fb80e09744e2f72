package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/parley-chat/parley/store"
)

// chunkSize is GridFS's default, so both engines split files alike. Each
// chunk is one row; a reader holds one chunk in memory at a time.
const chunkSize = 255 << 10

const fileCols = `id, owner_id, name, size, content_type, kind, created_at`

func scanFile(sc scanner) (store.File, error) {
	var (
		f       store.File
		created sql.NullInt64
	)
	err := sc.Scan(&f.ID, &f.OwnerID, &f.Name, &f.Size, &f.ContentType, &f.Kind, &created)
	f.CreatedAt = fromMS(created)
	return f, err
}

// cleanupTimeout bounds the removal of a failed upload, which must run even
// when the request that carried the upload has been cancelled.
const cleanupTimeout = 30 * time.Second

// CreateFile writes each chunk in a transaction of its own rather than the
// whole upload in one. SQLite has a single writer: one transaction spanning
// the upload would hold the write lock for as long as the client takes to
// send the body, and a slow phone on a bad network would stall every chat
// message behind it. Instead the file row is written first with complete = 0,
// which no read ever returns; chunks follow as the body arrives; the row
// becomes visible only when the last chunk is in. If the body fails, the
// context ends, or a write fails, the row and its chunks are deleted (ON
// DELETE CASCADE). A process killed mid-upload leaves an incomplete row that
// the next Open removes.
func (s *Store) CreateFile(ctx context.Context, f *store.File, r io.Reader) (err error) {
	op := "create file " + f.ID
	if _, err := s.w.ExecContext(ctx, `
		INSERT INTO files (id, owner_id, name, size, content_type, kind, chunk_size, created_at)
		VALUES (?, ?, ?, 0, ?, ?, ?, ?)`,
		f.ID, f.OwnerID, f.Name, f.ContentType, f.Kind, chunkSize, toMS(f.CreatedAt)); err != nil {
		return wrap(op, err)
	}
	done := false
	defer func() {
		if done {
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if _, cerr := s.w.ExecContext(cctx, `DELETE FROM files WHERE id = ? AND complete = 0`, f.ID); cerr != nil {
			err = errors.Join(err, fmt.Errorf("sqlite: %s: remove the failed upload: %w", op, cerr))
		}
	}()

	buf := make([]byte, chunkSize)
	var size int64
	for n := 0; ; n++ {
		k, rerr := io.ReadFull(r, buf)
		if rerr != nil && rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
			return fmt.Errorf("sqlite: %s: read: %w", op, rerr)
		}
		if k > 0 {
			if _, err := s.w.ExecContext(ctx,
				`INSERT INTO file_chunks (file_id, n, data) VALUES (?, ?, ?)`, f.ID, n, buf[:k]); err != nil {
				return wrap(op, err)
			}
			size += int64(k)
		}
		if rerr != nil { // EOF: the body is complete
			break
		}
	}
	if err := s.updateOne(ctx, op,
		`UPDATE files SET size = ?, complete = 1 WHERE id = ? AND complete = 0`, size, f.ID); err != nil {
		return err
	}
	done = true
	f.Size = size
	return nil
}

func (s *Store) FileByID(ctx context.Context, id string) (*store.File, error) {
	const op = "file by id"
	f, err := scanFile(s.r.QueryRowContext(ctx,
		`SELECT `+fileCols+` FROM files WHERE id = ? AND complete = 1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(op)
	}
	if err != nil {
		return nil, wrap(op, err)
	}
	return &f, nil
}

// OpenFile returns a reader that fetches chunks as it goes. It keeps ctx for
// those fetches: the reader lives as long as the request streaming it.
func (s *Store) OpenFile(ctx context.Context, id string) (store.FileReader, error) {
	const op = "open file"
	var size, stored int64 // stored: the chunk size the file was written with
	err := s.r.QueryRowContext(ctx,
		`SELECT size, chunk_size FROM files WHERE id = ? AND complete = 1`, id).Scan(&size, &stored)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(op)
	}
	if err != nil {
		return nil, wrap(op, err)
	}
	r, err := store.NewChunkReader(&chunkSource{ctx: ctx, db: s.r, id: id}, size, stored)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s %s: %w", op, id, err)
	}
	return r, nil
}

// chunkSource reads file_chunks rows into one reused buffer.
type chunkSource struct {
	ctx context.Context
	db  *sql.DB
	id  string
	buf []byte
}

// Chunk reads chunk n through sql.RawBytes, so the driver's copy is the only
// one and buf is reused rather than reallocated per chunk.
func (c *chunkSource) Chunk(n, want int64) ([]byte, error) {
	rows, err := c.db.QueryContext(c.ctx, `SELECT data FROM file_chunks WHERE file_id = ? AND n = ?`, c.id, n)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read file %s chunk %d: %w", c.id, n, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("sqlite: read file %s chunk %d: %w", c.id, n, err)
		}
		// The file was deleted while being read.
		return nil, fmt.Errorf("sqlite: read file %s chunk %d: %w", c.id, n, store.ErrNotFound)
	}
	var raw sql.RawBytes
	if err := rows.Scan(&raw); err != nil {
		return nil, fmt.Errorf("sqlite: read file %s chunk %d: %w", c.id, n, err)
	}
	if int64(len(raw)) != want {
		return nil, fmt.Errorf("sqlite: read file %s chunk %d: %d bytes, want %d", c.id, n, len(raw), want)
	}
	c.buf = append(c.buf[:0], raw...)
	return c.buf, rows.Close()
}

func (c *chunkSource) Close() error { return nil }

func (s *Store) DeleteFile(ctx context.Context, id string) error {
	// Chunks go with the row (ON DELETE CASCADE), in the same transaction.
	return s.updateOne(ctx, "delete file", `DELETE FROM files WHERE id = ? AND complete = 1`, id)
}

func (s *Store) DeleteOrphanFile(ctx context.Context, id string, t time.Time) error {
	// Chunks go with the row (ON DELETE CASCADE), in the same statement.
	return s.updateOne(ctx, "delete orphan file", `DELETE FROM files
		WHERE id = ? AND kind = 'attachment' AND attached = 0 AND complete = 1 AND created_at < ?`, id, toMS(t))
}

func (s *Store) MarkAttached(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := s.w.ExecContext(ctx,
		`UPDATE files SET attached = 1 WHERE id IN (SELECT value FROM json_each(?))`, idList(ids)); err != nil {
		return wrap("mark attached", err)
	}
	return nil
}

// UnattachedBefore spells out the files_unattached index's WHERE clause
// literally: SQLite uses a partial index only when the query's terms match.
func (s *Store) UnattachedBefore(ctx context.Context, t time.Time, limit int) ([]store.File, error) {
	const op = "unattached before"
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := s.r.QueryContext(ctx, `
		SELECT `+fileCols+` FROM files
		WHERE kind = 'attachment' AND attached = 0 AND complete = 1 AND created_at < ?
		ORDER BY created_at, id
		LIMIT ?`, t.UnixMilli(), limit)
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	out := []store.File{}
	for rows.Next() {
		f, err := scanFile(rows)
		if err != nil {
			return nil, wrap(op, err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(op, err)
	}
	return out, nil
}
