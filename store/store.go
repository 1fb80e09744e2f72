// Package store declares Parley's persistence: the records it keeps and the
// interfaces both storage engines (store/sqlite, store/mongo) implement. The
// engines are interchangeable; one contract suite (store/storetest) holds them
// to the same behaviour.
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Sentinel errors. Engines wrap them with %w so callers use errors.Is.
var (
	ErrNotFound = errors.New("not found")
	// ErrConflict is returned when a unique index refuses a write. Use
	// errors.As with *ConflictError to learn which invariant was hit.
	ErrConflict = errors.New("conflict")
)

// Conflict names the unique invariant a write ran into.
type Conflict string

const (
	ConflictUsername    Conflict = "username"
	ConflictEmail       Conflict = "email"
	ConflictDirectKey   Conflict = "directKey"   // a direct chat for that pair exists
	ConflictSeq         Conflict = "seq"         // (chatId, seq) taken
	ConflictClientMsgID Conflict = "clientMsgId" // (chatId, senderId, clientMsgId) taken
	ConflictID          Conflict = "id"
	// ConflictUnknown: the engine could not tell which index refused the
	// write (FerretDB does not name it); callers re-check by reading.
	ConflictUnknown Conflict = "unknown"
)

// ConflictError is ErrConflict with the invariant that refused the write.
type ConflictError struct{ On Conflict }

func (e *ConflictError) Error() string { return fmt.Sprintf("conflict on %s", e.On) }
func (e *ConflictError) Unwrap() error { return ErrConflict }

// ConflictOn reports which invariant err names, or "" if err is no conflict.
func ConflictOn(err error) Conflict {
	var ce *ConflictError
	if errors.As(err, &ce) {
		return ce.On
	}
	return ""
}

// NewID returns a fresh 24-hex ObjectID, the id format of every record.
func NewID() string { return bson.NewObjectID().Hex() }

// ValidID reports whether s is a well-formed 24-hex id. Malformed ids name
// nothing, so callers answer not_found for them without a query.
func ValidID(s string) bool {
	_, err := bson.ObjectIDFromHex(s)
	return err == nil
}

// User is an account. Username and Email are stored lower-cased; the unique
// indexes on them are the guard of "unique ignoring case".
type User struct {
	ID           string
	Username     string
	Email        string
	DisplayName  string
	PasswordHash string
	AvatarFileID string    // "" when none
	PictureURL   string    // an external picture (the MERN app's pic), "" when none
	LastSeenAt   time.Time // zero when never seen
	CreatedAt    time.Time
}

// UserUpdate changes the non-nil fields of a user.
type UserUpdate struct {
	DisplayName  *string
	PasswordHash *string
	AvatarFileID *string // pointer to "" clears it
}

// Session is the record behind a token. A token is valid only while its
// session record exists.
type Session struct {
	ID         string
	UserID     string
	UserAgent  string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
}

// SessionPurge notes an ended session whose cache entries may outlive it.
// It is written before the session record is removed, marked done once the
// cache has dropped the session, and kept until the session would have
// expired: a cache that comes back with old data (a restart from a
// snapshot, a failover) may bring the entry back, and every noted session
// is then dropped again (see package session).
type SessionPurge struct {
	SessionID string
	UserID    string
	// ExpiresAt is the session's own expiry: past it, no cache holds it.
	ExpiresAt time.Time
	// Pending is true until the cache is known to have dropped it.
	Pending bool
}

// Chat types and member roles, as on the wire.
const (
	ChatDirect = "direct"
	ChatGroup  = "group"

	RoleOwner  = "owner"
	RoleAdmin  = "admin"
	RoleMember = "member"
)

// Chat is a conversation. DirectKey makes direct chats unique per pair: for a
// direct chat it is the two user ids sorted and joined by ":"; a group uses
// "group:<id>" so the unique index never sees two equal keys (FerretDB has no
// partial indexes).
type Chat struct {
	ID        string
	Type      string
	Name      string // "" for direct chats
	DirectKey string
	Members   []Member
	CreatedAt time.Time
}

// Member is one user's place in a chat. ReadSeq only moves forward.
type Member struct {
	UserID  string
	Role    string
	ReadSeq int64
}

// Message is one chat message. Seq is 1, 2, 3 … per chat; the unique
// (ChatID, Seq) and (ChatID, SenderID, ClientMsgID) indexes guard it.
type Message struct {
	ID          string
	ChatID      string
	Seq         int64
	SenderID    string
	Text        string // "" when the message has only attachments
	Attachments []Attachment
	ClientMsgID string // "" when the client sent none
	CreatedAt   time.Time
}

// Attachment is a file as a message carries it.
type Attachment struct {
	ID          string
	Name        string
	Size        int64
	ContentType string
}

// File is an uploaded blob's metadata.
type File struct {
	ID          string
	OwnerID     string
	Name        string
	Size        int64
	ContentType string
	Kind        string // FileAttachment or FileAvatar
	CreatedAt   time.Time
}

// File kinds: avatars are never swept as orphans.
const (
	FileAttachment = "attachment"
	FileAvatar     = "avatar"
)

// Users keeps accounts.
type Users interface {
	// CreateUser inserts u; a taken username or email is a *ConflictError.
	CreateUser(ctx context.Context, u *User) error
	UserByID(ctx context.Context, id string) (*User, error)
	// UserByLogin finds a user by lower-cased username or email.
	UserByLogin(ctx context.Context, login string) (*User, error)
	// UsersByIDs returns the users that exist among ids, in any order.
	UsersByIDs(ctx context.Context, ids []string) ([]User, error)
	// SearchUsers returns users whose username or lower-cased display name
	// starts with prefix (already lower-cased), ordered by username.
	SearchUsers(ctx context.Context, prefix string, limit int) ([]User, error)
	// UsersContaining returns users whose lower-cased display name or email
	// contains sub (already lower-cased), ordered by username. The MERN API
	// searches this way; it scans, so callers keep limit small.
	UsersContaining(ctx context.Context, sub string, limit int) ([]User, error)
	// UpdateUser applies upd and returns the user as stored afterwards.
	UpdateUser(ctx context.Context, id string, upd UserUpdate) (*User, error)
	SetLastSeen(ctx context.Context, id string, at time.Time) error
}

// Sessions keeps session records.
type Sessions interface {
	CreateSession(ctx context.Context, s *Session) error
	SessionByID(ctx context.Context, id string) (*Session, error)
	// SessionsByUser lists a user's sessions, oldest first.
	SessionsByUser(ctx context.Context, userID string) ([]Session, error)
	// DeleteSession removes one session; ErrNotFound if there was none.
	DeleteSession(ctx context.Context, id string) error
	// DeleteUserSessions removes every session of userID except exceptID
	// ("" for none) and returns the ids it removed.
	DeleteUserSessions(ctx context.Context, userID, exceptID string) ([]string, error)
	TouchSession(ctx context.Context, id string, at time.Time) error
	// AddSessionPurges records purges as pending (again, if recorded).
	AddSessionPurges(ctx context.Context, ps []SessionPurge) error
	// SessionPurges lists up to limit purges with session ids above after,
	// in id order; only the pending ones when pendingOnly.
	SessionPurges(ctx context.Context, after string, limit int, pendingOnly bool) ([]SessionPurge, error)
	// FinishSessionPurges marks the purges of sids done.
	FinishSessionPurges(ctx context.Context, sids []string) error
	// DeleteExpiredSessionPurges forgets purges of sessions expired before t.
	DeleteExpiredSessionPurges(ctx context.Context, t time.Time) error
}

// Chats keeps chats and their members.
type Chats interface {
	// CreateChat inserts c with its members; a direct chat whose DirectKey
	// exists is a *ConflictError on ConflictDirectKey.
	CreateChat(ctx context.Context, c *Chat) error
	ChatByID(ctx context.Context, id string) (*Chat, error)
	ChatByDirectKey(ctx context.Context, key string) (*Chat, error)
	// ChatsByMember returns every chat userID belongs to, with all members.
	ChatsByMember(ctx context.Context, userID string) ([]Chat, error)
	RenameChat(ctx context.Context, id, name string) error
	// AddMembers adds members not yet in the chat; present ones are left as they are.
	AddMembers(ctx context.Context, chatID string, members []Member) error
	// RemoveMember removes userID from the chat; ErrNotFound if not a member.
	RemoveMember(ctx context.Context, chatID, userID string) error
	// SetReadSeq raises the member's ReadSeq to seq if it is higher, and
	// reports whether it moved.
	SetReadSeq(ctx context.Context, chatID, userID string, seq int64) (bool, error)
}

// Messages keeps messages.
type Messages interface {
	// InsertMessages stores msgs in order and stops at the first one a
	// unique index refuses: msgs[:n] are durable, and err (a *ConflictError
	// or another error) is about msgs[n]. A batch is one write where the
	// engine allows it (group commit).
	InsertMessages(ctx context.Context, msgs []*Message) (n int, err error)
	MessageByClientID(ctx context.Context, chatID, senderID, clientMsgID string) (*Message, error)
	// LastSeq is the highest seq stored in the chat, 0 when empty.
	LastSeq(ctx context.Context, chatID string) (int64, error)
	// LastMessage is the message with the highest seq, ErrNotFound when empty.
	LastMessage(ctx context.Context, chatID string) (*Message, error)
	// History returns up to limit messages in ascending seq: with before > 0
	// those just below before, with after > 0 those just above after, else
	// the newest. hasMore tells whether more exist beyond the page in the
	// paging direction (older for none/before, newer for after).
	History(ctx context.Context, chatID string, before, after int64, limit int) (msgs []Message, hasMore bool, err error)
	// CountUnread counts messages in chatID with seq > afterSeq not sent by userID.
	CountUnread(ctx context.Context, chatID, userID string, afterSeq int64) (int, error)
	// ChatsWithFile lists up to limit chats in which a message carries
	// fileID, in no particular order.
	ChatsWithFile(ctx context.Context, fileID string, limit int) ([]string, error)
}

// FileReader streams a stored file; it seeks so Range requests work.
type FileReader interface {
	io.ReadSeeker
	io.Closer
}

// Files keeps uploaded blobs, streamed in chunks (GridFS in MongoDB, chunk
// rows in SQLite) so no file is ever held whole in memory.
type Files interface {
	// CreateFile streams r into a new file with f's metadata; f.Size is set
	// from the bytes read. If r fails, nothing of the file stays behind.
	CreateFile(ctx context.Context, f *File, r io.Reader) error
	FileByID(ctx context.Context, id string) (*File, error)
	OpenFile(ctx context.Context, id string) (FileReader, error)
	DeleteFile(ctx context.Context, id string) error
	// MarkAttached records that a message references the file, so the orphan
	// sweep leaves it alone.
	MarkAttached(ctx context.Context, ids []string) error
	// UnattachedBefore lists attachment-kind files never attached and
	// created before t, oldest first.
	UnattachedBefore(ctx context.Context, t time.Time, limit int) ([]File, error)
	// DeleteOrphanFile removes file id only if it is still an attachment
	// never attached and created before t, in one conditional write: a
	// send that attached it meanwhile (MarkAttached) keeps it. ErrNotFound
	// when it is gone or no longer an orphan.
	DeleteOrphanFile(ctx context.Context, id string, t time.Time) error
}

// Store is everything Parley persists.
type Store interface {
	Users
	Sessions
	Chats
	Messages
	Files
	Ping(ctx context.Context) error
	Close() error
}
