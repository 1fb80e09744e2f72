package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/parley-chat/parley/store"
)

// attachment is the JSON form of store.Attachment in messages.attachments,
// with names of its own so renaming a Go field never breaks stored rows.
type attachment struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Size        int64  `json:"size"`
	ContentType string `json:"contentType"`
}

func encodeAttachments(as []store.Attachment) (any, error) {
	if len(as) == 0 {
		return nil, nil
	}
	js := make([]attachment, len(as))
	for i, a := range as {
		js[i] = attachment(a)
	}
	b, err := json.Marshal(js)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

func decodeAttachments(v sql.NullString) ([]store.Attachment, error) {
	out := []store.Attachment{}
	if !v.Valid || v.String == "" {
		return out, nil
	}
	var js []attachment
	if err := json.Unmarshal([]byte(v.String), &js); err != nil {
		return nil, fmt.Errorf("decode attachments: %w", err)
	}
	for _, a := range js {
		out = append(out, store.Attachment(a))
	}
	return out, nil
}

const messageCols = `id, chat_id, seq, sender_id, text, attachments, client_msg_id, created_at`

func scanMessage(sc scanner) (store.Message, error) {
	var (
		m           store.Message
		attachments sql.NullString
		clientMsgID sql.NullString
		created     sql.NullInt64
	)
	if err := sc.Scan(&m.ID, &m.ChatID, &m.Seq, &m.SenderID, &m.Text, &attachments, &clientMsgID, &created); err != nil {
		return m, err
	}
	m.ClientMsgID = clientMsgID.String
	m.CreatedAt = fromMS(created)
	var err error
	m.Attachments, err = decodeAttachments(attachments)
	return m, err
}

const (
	insertMessageQuery = `
		INSERT INTO messages (id, chat_id, seq, sender_id, text, attachments, client_msg_id, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	insertMessageFileQuery = `INSERT OR IGNORE INTO message_files (file_id, chat_id, seq) VALUES (?, ?, ?)`
)

// InsertMessages writes the batch in one transaction: SQLite's cost is the
// commit (WAL append plus locking), so a batch costs about what one message
// does. A statement refused by a unique index rolls back only itself; the
// batch then commits what came before it. Any other failure rolls back the
// whole batch and reports n = 0, so the caller retries from msgs[0] and
// never mistakes an unwritten message for a durable one.
func (s *Store) InsertMessages(ctx context.Context, msgs []*store.Message) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	var (
		n       int
		refused error
	)
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		// The transaction's own copies of the writer's prepared statements,
		// closed with it; the prepared ones stay.
		ins := tx.StmtContext(ctx, s.q.insertMessage)
		ref := tx.StmtContext(ctx, s.q.insertMessageFile)

		for _, m := range msgs {
			atts, err := encodeAttachments(m.Attachments)
			if err != nil {
				return fmt.Errorf("message %d: %w", n, err)
			}
			_, err = ins.ExecContext(ctx, m.ID, m.ChatID, m.Seq, m.SenderID, m.Text, atts,
				nullable(m.ClientMsgID), toMS(m.CreatedAt))
			if err != nil {
				if c, ok := conflict(err); ok {
					refused = fmt.Errorf("sqlite: insert message %d of %d: %w (%v)",
						n+1, len(msgs), &store.ConflictError{On: c}, err)
					return nil // commit msgs[:n]
				}
				return fmt.Errorf("message %d: %w", n, err)
			}
			for _, a := range m.Attachments {
				if _, err := ref.ExecContext(ctx, a.ID, m.ChatID, m.Seq); err != nil {
					return fmt.Errorf("message %d: %w", n, err)
				}
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, wrap("insert messages", err)
	}
	return n, refused
}

func (s *Store) MessageByClientID(ctx context.Context, chatID, senderID, clientMsgID string) (*store.Message, error) {
	const op = "message by client id"
	if clientMsgID == "" {
		return nil, notFound(op) // stored as NULL: "" names no message
	}
	return s.oneMessage(ctx, op, `
		SELECT `+messageCols+` FROM messages
		WHERE chat_id = ? AND sender_id = ? AND client_msg_id = ?`, chatID, senderID, clientMsgID)
}

func (s *Store) LastSeq(ctx context.Context, chatID string) (int64, error) {
	var seq int64
	err := s.r.QueryRowContext(ctx,
		`SELECT seq FROM messages WHERE chat_id = ? ORDER BY seq DESC LIMIT 1`, chatID).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, wrap("last seq", err)
	}
	return seq, nil
}

func (s *Store) LastMessage(ctx context.Context, chatID string) (*store.Message, error) {
	return s.oneMessage(ctx, "last message",
		`SELECT `+messageCols+` FROM messages WHERE chat_id = ? ORDER BY seq DESC LIMIT 1`, chatID)
}

func (s *Store) oneMessage(ctx context.Context, op, query string, args ...any) (*store.Message, error) {
	m, err := scanMessage(s.r.QueryRowContext(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(op)
	}
	if err != nil {
		return nil, wrap(op, err)
	}
	return &m, nil
}

// History asks for one row more than the page: its presence is hasMore,
// without a second query.
func (s *Store) History(ctx context.Context, chatID string, before, after int64, limit int) ([]store.Message, bool, error) {
	const op = "history"
	limit = max(limit, 0)
	var (
		query string
		args  []any
		desc  bool
	)
	switch {
	case before > 0:
		query, args, desc = `WHERE chat_id = ? AND seq < ? ORDER BY seq DESC`, []any{chatID, before}, true
	case after > 0:
		query, args = `WHERE chat_id = ? AND seq > ? ORDER BY seq ASC`, []any{chatID, after}
	default:
		query, args, desc = `WHERE chat_id = ? ORDER BY seq DESC`, []any{chatID}, true
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+messageCols+` FROM messages `+query+` LIMIT ?`,
		append(args, limit+1)...)
	if err != nil {
		return nil, false, wrap(op, err)
	}
	defer rows.Close()
	msgs := make([]store.Message, 0, min(limit+1, 256))
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, false, wrap(op, err)
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, false, wrap(op, err)
	}
	more := len(msgs) > limit
	if more {
		msgs = msgs[:limit]
	}
	if desc {
		slices.Reverse(msgs)
	}
	return msgs, more, nil
}

func (s *Store) CountUnread(ctx context.Context, chatID, userID string, afterSeq int64) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx,
		`SELECT count(*) FROM messages WHERE chat_id = ? AND seq > ? AND sender_id <> ?`,
		chatID, afterSeq, userID).Scan(&n)
	if err != nil {
		return 0, wrap("count unread", err)
	}
	return n, nil
}

func (s *Store) ChatsWithFile(ctx context.Context, fileID string, limit int) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT DISTINCT chat_id FROM message_files WHERE file_id = ? LIMIT ?`, fileID, limit)
	if err != nil {
		return nil, wrap("chats with file", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, wrap("chats with file", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("chats with file", err)
	}
	return ids, nil
}
