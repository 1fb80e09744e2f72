package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/parley-chat/parley/store"
)

const userCols = `id, username, email, display_name, password_hash, avatar_file_id, picture_url, last_seen_at, created_at`

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface{ Scan(dest ...any) error }

func scanUser(sc scanner) (store.User, error) {
	var (
		u                 store.User
		lastSeen, created sql.NullInt64
	)
	err := sc.Scan(&u.ID, &u.Username, &u.Email, &u.DisplayName, &u.PasswordHash, &u.AvatarFileID, &u.PictureURL, &lastSeen, &created)
	u.LastSeenAt, u.CreatedAt = fromMS(lastSeen), fromMS(created)
	return u, err
}

func (s *Store) CreateUser(ctx context.Context, u *store.User) error {
	_, err := s.w.ExecContext(ctx, `
		INSERT INTO users (id, username, email, display_name, display_name_lower,
			password_hash, avatar_file_id, picture_url, last_seen_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Username, u.Email, u.DisplayName, strings.ToLower(u.DisplayName),
		u.PasswordHash, u.AvatarFileID, u.PictureURL, toMS(u.LastSeenAt), toMS(u.CreatedAt))
	if err != nil {
		return wrap("create user", err)
	}
	return nil
}

func (s *Store) UserByID(ctx context.Context, id string) (*store.User, error) {
	return s.oneUser(ctx, "user by id", `SELECT `+userCols+` FROM users WHERE id = ?`, id)
}

// UserByLogin compares through lower() so the lookups use the same
// expression indexes that guard uniqueness.
func (s *Store) UserByLogin(ctx context.Context, login string) (*store.User, error) {
	return s.oneUser(ctx, "user by login",
		`SELECT `+userCols+` FROM users WHERE lower(username) = ? OR lower(email) = ? LIMIT 1`, login, login)
}

func (s *Store) oneUser(ctx context.Context, op, query string, args ...any) (*store.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(op)
	}
	if err != nil {
		return nil, wrap(op, err)
	}
	return &u, nil
}

func (s *Store) UsersByIDs(ctx context.Context, ids []string) ([]store.User, error) {
	if len(ids) == 0 {
		return []store.User{}, nil
	}
	return s.users(ctx, "users by ids",
		`SELECT `+userCols+` FROM users WHERE id IN (SELECT value FROM json_each(?))`, idList(ids))
}

// SearchUsers matches prefixes with a range rather than LIKE: LIKE would
// need its wildcards escaped and, being ASCII-case-insensitive, cannot use
// the indexes. Every string starting with p sorts in [p, p+"\xff") because
// 0xFF never occurs in UTF-8.
func (s *Store) SearchUsers(ctx context.Context, prefix string, limit int) ([]store.User, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	hi := prefix + "\xff"
	return s.users(ctx, "search users", `
		SELECT `+userCols+` FROM users
		WHERE (lower(username) >= ? AND lower(username) < ?)
		   OR (display_name_lower >= ? AND display_name_lower < ?)
		ORDER BY username
		LIMIT ?`, prefix, hi, prefix, hi, limit)
}

// UsersContaining uses instr rather than LIKE, so sub needs no escaping.
func (s *Store) UsersContaining(ctx context.Context, sub string, limit int) ([]store.User, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	return s.users(ctx, "users containing", `
		SELECT `+userCols+` FROM users
		WHERE instr(display_name_lower, ?) > 0 OR instr(lower(email), ?) > 0
		ORDER BY username
		LIMIT ?`, sub, sub, limit)
}

func (s *Store) users(ctx context.Context, op, query string, args ...any) ([]store.User, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	out := []store.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, wrap(op, err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(op, err)
	}
	return out, nil
}

func (s *Store) UpdateUser(ctx context.Context, id string, upd store.UserUpdate) (*store.User, error) {
	const op = "update user"
	var (
		set  []string
		args []any
	)
	if upd.DisplayName != nil {
		set = append(set, "display_name = ?", "display_name_lower = ?")
		args = append(args, *upd.DisplayName, strings.ToLower(*upd.DisplayName))
	}
	if upd.PasswordHash != nil {
		set = append(set, "password_hash = ?")
		args = append(args, *upd.PasswordHash)
	}
	if upd.AvatarFileID != nil {
		set = append(set, "avatar_file_id = ?")
		args = append(args, *upd.AvatarFileID)
	}
	// RETURNING reads the row the update wrote in the same statement; an
	// empty update still reads through the writer, so the answer never lags
	// a write this caller has just made.
	query := `SELECT ` + userCols + ` FROM users WHERE id = ?`
	if len(set) > 0 {
		query = `UPDATE users SET ` + strings.Join(set, ", ") + ` WHERE id = ? RETURNING ` + userCols
	}
	u, err := scanUser(s.w.QueryRowContext(ctx, query, append(args, id)...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(op)
	}
	if err != nil {
		return nil, wrap(op, err)
	}
	return &u, nil
}

const setLastSeenQuery = `UPDATE users SET last_seen_at = ? WHERE id = ?`

func (s *Store) SetLastSeen(ctx context.Context, id string, at time.Time) error {
	return checkOne("set last seen", func() (sql.Result, error) { return s.q.setLastSeen.ExecContext(ctx, toMS(at), id) })
}

// updateOne runs a write that must hit a row, else ErrNotFound.
func (s *Store) updateOne(ctx context.Context, op, query string, args ...any) error {
	return checkOne(op, func() (sql.Result, error) { return s.w.ExecContext(ctx, query, args...) })
}

// checkOne runs exec, a write that must hit a row, else ErrNotFound.
func checkOne(op string, exec func() (sql.Result, error)) error {
	res, err := exec()
	if err != nil {
		return wrap(op, err)
	}
	ok, err := affectedOne(res)
	if err != nil {
		return wrap(op, err)
	}
	if !ok {
		return notFound(op)
	}
	return nil
}
