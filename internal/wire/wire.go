// Package wire owns what goes on the wire: the JSON shape of every object
// and event of the contract. The chat service's broadcasts, the socket acks
// and the REST answers all render through it, so they speak exactly alike;
// services return domain records (store types, chat.View) and their callers
// render them here. Every field is always present; empty values are null.
package wire

import (
	"time"

	"github.com/parley-chat/parley/store"
)

// Time is an RFC 3339 UTC time that renders null when zero.
type Time struct{ time.Time }

// MarshalJSON renders RFC 3339 with milliseconds, or null.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	b := make([]byte, 0, 32)
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	return append(b, '"'), nil
}

// User is the public user object; Email is set only for /api/me.
type User struct {
	ID          string  `json:"id"`
	Username    string  `json:"username"`
	DisplayName string  `json:"displayName"`
	AvatarURL   *string `json:"avatarUrl"`
	Online      bool    `json:"online"`
	LastSeenAt  Time    `json:"lastSeenAt"`
	CreatedAt   Time    `json:"createdAt"`
}

// Me is the caller's own user object.
type Me struct {
	User
	Email string `json:"email"`
}

// NewUser renders u.
func NewUser(u *store.User, online bool) User {
	var avatar *string
	if u.AvatarFileID != "" {
		s := "/api/users/" + u.ID + "/avatar?v=" + u.AvatarFileID
		avatar = &s
	}
	return User{
		ID: u.ID, Username: u.Username, DisplayName: u.DisplayName, AvatarURL: avatar,
		Online: online, LastSeenAt: Time{u.LastSeenAt}, CreatedAt: Time{u.CreatedAt},
	}
}

// NewMe renders the caller's own user.
func NewMe(u *store.User, online bool) Me { return Me{User: NewUser(u, online), Email: u.Email} }

// Session is one entry of GET /api/auth/sessions.
type Session struct {
	ID         string  `json:"id"`
	CreatedAt  Time    `json:"createdAt"`
	LastSeenAt Time    `json:"lastSeenAt"`
	UserAgent  *string `json:"userAgent"`
	Current    bool    `json:"current"`
}

// NewSession renders s; current marks the caller's own session.
func NewSession(s *store.Session, current bool) Session {
	return Session{ID: s.ID, CreatedAt: Time{s.CreatedAt}, LastSeenAt: Time{s.LastSeenAt}, UserAgent: nullable(s.UserAgent), Current: current}
}

// Member is a chat member.
type Member struct {
	UserID string `json:"userId"`
	Role   string `json:"role"`
}

// Chat is the chat object.
type Chat struct {
	ID          string   `json:"id"`
	Type        string   `json:"type"`
	Name        *string  `json:"name"`
	Members     []Member `json:"members"`
	CreatedAt   Time     `json:"createdAt"`
	LastMessage *Message `json:"lastMessage"`
	UnreadCount int      `json:"unreadCount"`
}

// NewChat renders c with its last message (nil for none) and unread count.
func NewChat(c *store.Chat, last *store.Message, unread int) Chat {
	members := make([]Member, len(c.Members))
	for i, m := range c.Members {
		members[i] = Member{UserID: m.UserID, Role: m.Role}
	}
	var lm *Message
	if last != nil {
		m := NewMessage(last)
		lm = &m
	}
	return Chat{ID: c.ID, Type: c.Type, Name: nullable(c.Name), Members: members, CreatedAt: Time{c.CreatedAt}, LastMessage: lm, UnreadCount: unread}
}

// Attachment is a file as a message carries it.
type Attachment struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Size        int64  `json:"size"`
	ContentType string `json:"contentType"`
}

// Message is the message object.
type Message struct {
	ID          string       `json:"id"`
	ChatID      string       `json:"chatId"`
	Seq         int64        `json:"seq"`
	SenderID    string       `json:"senderId"`
	Text        *string      `json:"text"`
	Attachments []Attachment `json:"attachments"`
	ClientMsgID *string      `json:"clientMsgId"`
	CreatedAt   Time         `json:"createdAt"`
}

// NewMessage renders m.
func NewMessage(m *store.Message) Message {
	atts := make([]Attachment, len(m.Attachments))
	for i, a := range m.Attachments {
		atts[i] = Attachment(a)
	}
	return Message{
		ID: m.ID, ChatID: m.ChatID, Seq: m.Seq, SenderID: m.SenderID, Text: nullable(m.Text),
		Attachments: atts, ClientMsgID: nullable(m.ClientMsgID), CreatedAt: Time{m.CreatedAt},
	}
}

// History is a page of a chat's messages, as REST answers it and as the
// chat:history ack carries it (beside "ok").
type History struct {
	Messages []Message `json:"messages"`
	HasMore  bool      `json:"hasMore"`
}

// NewHistory renders a page of messages.
func NewHistory(msgs []store.Message, more bool) History {
	out := make([]Message, len(msgs))
	for i := range msgs {
		out[i] = NewMessage(&msgs[i])
	}
	return History{Messages: out, HasMore: more}
}

// Read is the message:read event.
type Read struct {
	ChatID string `json:"chatId"`
	UserID string `json:"userId"`
	Seq    int64  `json:"seq"`
}

// Typing is the typing event.
type Typing struct {
	ChatID   string `json:"chatId"`
	UserID   string `json:"userId"`
	IsTyping bool   `json:"isTyping"`
}

// ChatRemoved is the chat:removed event.
type ChatRemoved struct {
	ChatID string `json:"chatId"`
}

// Presence is the presence event and one entry of the presence:get ack.
type Presence struct {
	UserID     string `json:"userId"`
	Online     bool   `json:"online"`
	LastSeenAt Time   `json:"lastSeenAt"`
}

// File is the file object.
type File struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Size        int64  `json:"size"`
	ContentType string `json:"contentType"`
	CreatedAt   Time   `json:"createdAt"`
}

// NewFile renders f.
func NewFile(f *store.File) File {
	return File{ID: f.ID, Name: f.Name, Size: f.Size, ContentType: f.ContentType, CreatedAt: Time{f.CreatedAt}}
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
