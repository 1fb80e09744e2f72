package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/parley-chat/parley/store"
)

const (
	sessionCols      = `id, user_id, user_agent, created_at, last_seen_at, expires_at`
	sessionByIDQuery = `SELECT ` + sessionCols + ` FROM sessions WHERE id = ?`
)

func scanSession(sc scanner) (store.Session, error) {
	var (
		ss                         store.Session
		created, lastSeen, expires sql.NullInt64
	)
	err := sc.Scan(&ss.ID, &ss.UserID, &ss.UserAgent, &created, &lastSeen, &expires)
	ss.CreatedAt, ss.LastSeenAt, ss.ExpiresAt = fromMS(created), fromMS(lastSeen), fromMS(expires)
	return ss, err
}

func (s *Store) CreateSession(ctx context.Context, ss *store.Session) error {
	_, err := s.w.ExecContext(ctx, `
		INSERT INTO sessions (id, user_id, user_agent, created_at, last_seen_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?)`,
		ss.ID, ss.UserID, ss.UserAgent, toMS(ss.CreatedAt), toMS(ss.LastSeenAt), toMS(ss.ExpiresAt))
	if err != nil {
		return wrap("create session", err)
	}
	return nil
}

func (s *Store) SessionByID(ctx context.Context, id string) (*store.Session, error) {
	const op = "session by id"
	ss, err := scanSession(s.q.sessionByID.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(op)
	}
	if err != nil {
		return nil, wrap(op, err)
	}
	return &ss, nil
}

func (s *Store) SessionsByUser(ctx context.Context, userID string) ([]store.Session, error) {
	const op = "sessions by user"
	rows, err := s.r.QueryContext(ctx,
		`SELECT `+sessionCols+` FROM sessions WHERE user_id = ? ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	out := []store.Session{}
	for rows.Next() {
		ss, err := scanSession(rows)
		if err != nil {
			return nil, wrap(op, err)
		}
		out = append(out, ss)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(op, err)
	}
	return out, nil
}

func (s *Store) DeleteSession(ctx context.Context, id string) error {
	return s.updateOne(ctx, "delete session", `DELETE FROM sessions WHERE id = ?`, id)
}

// DeleteUserSessions uses RETURNING so the ids reported are exactly the rows
// this statement removed, not a list read beforehand that may have changed.
func (s *Store) DeleteUserSessions(ctx context.Context, userID, exceptID string) ([]string, error) {
	const op = "delete user sessions"
	rows, err := s.w.QueryContext(ctx,
		`DELETE FROM sessions WHERE user_id = ? AND id <> ? RETURNING id`, userID, exceptID)
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	removed := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, wrap(op, err)
		}
		removed = append(removed, id)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(op, err)
	}
	return removed, nil
}

func (s *Store) TouchSession(ctx context.Context, id string, at time.Time) error {
	return s.updateOne(ctx, "touch session", `UPDATE sessions SET last_seen_at = ? WHERE id = ?`, toMS(at), id)
}

func (s *Store) AddSessionPurges(ctx context.Context, ps []store.SessionPurge) error {
	if len(ps) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return wrap("add session purges", err)
	}
	defer tx.Rollback()
	for _, p := range ps {
		if _, err := tx.ExecContext(ctx, `INSERT INTO session_purges (session_id, user_id, expires_at, pending) VALUES (?, ?, ?, 1)
			ON CONFLICT (session_id) DO UPDATE SET pending = 1`, p.SessionID, p.UserID, toMS(p.ExpiresAt)); err != nil {
			return wrap("add session purges", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return wrap("add session purges", err)
	}
	return nil
}

func (s *Store) SessionPurges(ctx context.Context, after string, limit int, pendingOnly bool) ([]store.SessionPurge, error) {
	const op = "session purges"
	q := `SELECT session_id, user_id, expires_at, pending FROM session_purges WHERE session_id > ?`
	if pendingOnly {
		q += ` AND pending = 1`
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY session_id LIMIT ?`, after, limit)
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	out := []store.SessionPurge{}
	for rows.Next() {
		var (
			p   store.SessionPurge
			exp sql.NullInt64
		)
		if err := rows.Scan(&p.SessionID, &p.UserID, &exp, &p.Pending); err != nil {
			return nil, wrap(op, err)
		}
		p.ExpiresAt = fromMS(exp)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(op, err)
	}
	return out, nil
}

func (s *Store) FinishSessionPurges(ctx context.Context, sids []string) error {
	if len(sids) == 0 {
		return nil
	}
	args := make([]any, len(sids))
	for i, id := range sids {
		args[i] = id
	}
	q := `UPDATE session_purges SET pending = 0 WHERE session_id IN (?` + strings.Repeat(", ?", len(sids)-1) + `)`
	if _, err := s.w.ExecContext(ctx, q, args...); err != nil {
		return wrap("finish session purges", err)
	}
	return nil
}

func (s *Store) DeleteExpiredSessionPurges(ctx context.Context, t time.Time) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM session_purges WHERE expires_at < ?`, toMS(t)); err != nil {
		return wrap("delete expired session purges", err)
	}
	return nil
}
