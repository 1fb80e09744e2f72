package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/parley-chat/parley/store"
)

// writeTx runs fn in one write transaction (BEGIN IMMEDIATE, see dsn) and
// commits if fn succeeds.
func (s *Store) writeTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

func (s *Store) CreateChat(ctx context.Context, c *store.Chat) error {
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO chats (id, type, name, direct_key, created_at) VALUES (?, ?, ?, ?, ?)`,
			c.ID, c.Type, c.Name, c.DirectKey, toMS(c.CreatedAt)); err != nil {
			return err
		}
		return insertMembers(ctx, tx, c.ID, c.Members)
	})
	if err != nil {
		return wrap("create chat", err)
	}
	return nil
}

// insertMembers leaves members already in the chat as they are (their role
// and read position are theirs to keep), which makes AddMembers idempotent.
func insertMembers(ctx context.Context, tx *sql.Tx, chatID string, members []store.Member) error {
	if len(members) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, `
		INSERT INTO chat_members (chat_id, user_id, role, read_seq) VALUES (?, ?, ?, ?)
		ON CONFLICT (chat_id, user_id) DO NOTHING`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, m := range members {
		if _, err := stmt.ExecContext(ctx, chatID, m.UserID, m.Role, m.ReadSeq); err != nil {
			return err
		}
	}
	return nil
}

// A chat is read with its members in one statement, one row a member: a
// single statement sees one snapshot, so the chat and its members agree
// without a transaction, and the hot ones are prepared (see stmts).
const (
	chatWithMembersCols = `c.id, c.type, c.name, c.direct_key, c.created_at, o.user_id, o.role, o.read_seq`
	chatByIDQuery       = `SELECT ` + chatWithMembersCols + `
		FROM chats c LEFT JOIN chat_members o ON o.chat_id = c.id
		WHERE c.id = ? ORDER BY o.rowid`
	chatByDirectKeyQuery = `SELECT ` + chatWithMembersCols + `
		FROM chats c LEFT JOIN chat_members o ON o.chat_id = c.id
		WHERE c.direct_key = ? ORDER BY o.rowid`
	// Members in rowid order, the order they joined in.
	chatsByMemberQuery = `SELECT ` + chatWithMembersCols + `
		FROM chat_members m JOIN chats c ON c.id = m.chat_id JOIN chat_members o ON o.chat_id = c.id
		WHERE m.user_id = ? ORDER BY c.created_at, c.id, o.rowid`
)

// scanChats reads chatWithMembersCols rows, a chat's rows together, into
// chats with their members (none for a chat whose member columns are NULL).
func scanChats(rows *sql.Rows) ([]store.Chat, error) {
	defer rows.Close()
	chats := []store.Chat{}
	for rows.Next() {
		var (
			c            store.Chat
			created      sql.NullInt64
			userID, role sql.NullString
			readSeq      sql.NullInt64
		)
		if err := rows.Scan(&c.ID, &c.Type, &c.Name, &c.DirectKey, &created, &userID, &role, &readSeq); err != nil {
			return nil, err
		}
		if n := len(chats); n == 0 || chats[n-1].ID != c.ID {
			c.CreatedAt = fromMS(created)
			c.Members = []store.Member{}
			chats = append(chats, c)
		}
		if userID.Valid {
			last := &chats[len(chats)-1]
			last.Members = append(last.Members, store.Member{UserID: userID.String, Role: role.String, ReadSeq: readSeq.Int64})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return chats, nil
}

func (s *Store) ChatByID(ctx context.Context, id string) (*store.Chat, error) {
	return oneChat("chat by id", func() (*sql.Rows, error) { return s.q.chatByID.QueryContext(ctx, id) })
}

func (s *Store) ChatByDirectKey(ctx context.Context, key string) (*store.Chat, error) {
	return oneChat("chat by direct key", func() (*sql.Rows, error) { return s.r.QueryContext(ctx, chatByDirectKeyQuery, key) })
}

func oneChat(op string, query func() (*sql.Rows, error)) (*store.Chat, error) {
	rows, err := query()
	if err != nil {
		return nil, wrap(op, err)
	}
	chats, err := scanChats(rows)
	if err != nil {
		return nil, wrap(op, err)
	}
	if len(chats) == 0 {
		return nil, notFound(op)
	}
	return &chats[0], nil
}

func (s *Store) ChatsByMember(ctx context.Context, userID string) ([]store.Chat, error) {
	const op = "chats by member"
	rows, err := s.q.chatsByMember.QueryContext(ctx, userID)
	if err != nil {
		return nil, wrap(op, err)
	}
	chats, err := scanChats(rows)
	if err != nil {
		return nil, wrap(op, err)
	}
	return chats, nil
}

func (s *Store) RenameChat(ctx context.Context, id, name string) error {
	return s.updateOne(ctx, "rename chat", `UPDATE chats SET name = ? WHERE id = ?`, name, id)
}

func (s *Store) AddMembers(ctx context.Context, chatID string, members []store.Member) error {
	const op = "add members"
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM chats WHERE id = ?`, chatID).Scan(&one); err != nil {
			return err
		}
		return insertMembers(ctx, tx, chatID, members)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return notFound(op)
	}
	if err != nil {
		return wrap(op, err)
	}
	return nil
}

func (s *Store) RemoveMember(ctx context.Context, chatID, userID string) error {
	return s.updateOne(ctx, "remove member",
		`DELETE FROM chat_members WHERE chat_id = ? AND user_id = ?`, chatID, userID)
}

// SetReadSeq lets the WHERE clause decide "only forward", so two devices of
// one user racing to mark read can never move the position back.
func (s *Store) SetReadSeq(ctx context.Context, chatID, userID string, seq int64) (bool, error) {
	const op = "set read seq"
	res, err := s.w.ExecContext(ctx, `
		UPDATE chat_members SET read_seq = ?
		WHERE chat_id = ? AND user_id = ? AND read_seq < ?`, seq, chatID, userID, seq)
	if err != nil {
		return false, wrap(op, err)
	}
	moved, err := affectedOne(res)
	if err != nil {
		return false, wrap(op, err)
	}
	if moved {
		return true, nil
	}
	var one int
	err = s.r.QueryRowContext(ctx,
		`SELECT 1 FROM chat_members WHERE chat_id = ? AND user_id = ?`, chatID, userID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("sqlite: %s: not a member: %w", op, store.ErrNotFound)
	}
	if err != nil {
		return false, wrap(op, err)
	}
	return false, nil
}
