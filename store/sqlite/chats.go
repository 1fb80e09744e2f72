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

// readTx runs fn in one read transaction, so reads spanning several
// statements see one snapshot (a chat and its members agree).
func (s *Store) readTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return fn(tx)
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

const chatCols = `c.id, c.type, c.name, c.direct_key, c.created_at`

func scanChat(sc scanner) (store.Chat, error) {
	var (
		c       store.Chat
		created sql.NullInt64
	)
	err := sc.Scan(&c.ID, &c.Type, &c.Name, &c.DirectKey, &created)
	c.CreatedAt = fromMS(created)
	c.Members = []store.Member{}
	return c, err
}

func (s *Store) ChatByID(ctx context.Context, id string) (*store.Chat, error) {
	return s.oneChat(ctx, "chat by id", `SELECT `+chatCols+` FROM chats c WHERE c.id = ?`, id)
}

func (s *Store) ChatByDirectKey(ctx context.Context, key string) (*store.Chat, error) {
	return s.oneChat(ctx, "chat by direct key", `SELECT `+chatCols+` FROM chats c WHERE c.direct_key = ?`, key)
}

func (s *Store) oneChat(ctx context.Context, op, query string, arg string) (*store.Chat, error) {
	var c store.Chat
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		var err error
		if c, err = scanChat(tx.QueryRowContext(ctx, query, arg)); err != nil {
			return err
		}
		return loadMembers(ctx, tx, []*store.Chat{&c},
			`SELECT chat_id, user_id, role, read_seq FROM chat_members WHERE chat_id = ? ORDER BY rowid`, c.ID)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(op)
	}
	if err != nil {
		return nil, wrap(op, err)
	}
	return &c, nil
}

// loadMembers fills in the members of chats from query's (chat_id, user_id,
// role, read_seq) rows.
func loadMembers(ctx context.Context, tx *sql.Tx, chats []*store.Chat, query string, args ...any) error {
	byID := make(map[string]*store.Chat, len(chats))
	for _, c := range chats {
		byID[c.ID] = c
	}
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			chatID string
			m      store.Member
		)
		if err := rows.Scan(&chatID, &m.UserID, &m.Role, &m.ReadSeq); err != nil {
			return err
		}
		if c := byID[chatID]; c != nil {
			c.Members = append(c.Members, m)
		}
	}
	return rows.Err()
}

func (s *Store) ChatsByMember(ctx context.Context, userID string) ([]store.Chat, error) {
	const op = "chats by member"
	var chats []store.Chat
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `
			SELECT `+chatCols+` FROM chat_members m JOIN chats c ON c.id = m.chat_id
			WHERE m.user_id = ? ORDER BY c.created_at, c.id`, userID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			c, err := scanChat(rows)
			if err != nil {
				return err
			}
			chats = append(chats, c)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()

		ptrs := make([]*store.Chat, len(chats))
		for i := range chats {
			ptrs[i] = &chats[i]
		}
		return loadMembers(ctx, tx, ptrs, `
			SELECT chat_id, user_id, role, read_seq FROM chat_members
			WHERE chat_id IN (SELECT chat_id FROM chat_members WHERE user_id = ?)
			ORDER BY rowid`, userID)
	})
	if err != nil {
		return nil, wrap(op, err)
	}
	if chats == nil {
		chats = []store.Chat{}
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
