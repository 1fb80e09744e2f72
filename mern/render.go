package mern

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/wire"
	"github.com/parley-chat/parley/store"
)

// DefaultPic is the picture of a user without an avatar: the one the app's
// user model defaults to.
const DefaultPic = "https://icon-library.com/images/anonymous-avatar-icon/anonymous-avatar-icon-25.jpg"

// User is the app's user. Never a password hash (the original app's search
// leaks them).
type User struct {
	ID      string `json:"_id"`
	Name    string `json:"name"`
	Email   string `json:"email"`
	Pic     string `json:"pic"`
	IsAdmin bool   `json:"isAdmin"`
}

// authResponse answers signup and login: the user and its token.
type authResponse struct {
	User
	Token string `json:"token"`
}

// Sender is a message's populated sender.
type Sender struct {
	ID    string `json:"_id"`
	Name  string `json:"name"`
	Pic   string `json:"pic"`
	Email string `json:"email"`
}

// Chat is the app's chat. A direct chat's chatName is "sender", as the app
// stores it (its UI shows the other user's name); groupAdmin is set for
// groups and latestMessage when the chat has any.
type Chat struct {
	ID            string    `json:"_id"`
	ChatName      string    `json:"chatName"`
	IsGroupChat   bool      `json:"isGroupChat"`
	Users         []User    `json:"users"`
	GroupAdmin    *User     `json:"groupAdmin,omitempty"`
	LatestMessage *Message  `json:"latestMessage,omitempty"`
	CreatedAt     wire.Time `json:"createdAt"`
	UpdatedAt     wire.Time `json:"updatedAt"`
}

// Message is the app's message. Chat is the populated chat, or the chat's
// id inside a chat's latestMessage (as the app populates it).
type Message struct {
	ID        string    `json:"_id"`
	Sender    Sender    `json:"sender"`
	Content   string    `json:"content"`
	Chat      any       `json:"chat"`
	ReadBy    []string  `json:"readBy"`
	CreatedAt wire.Time `json:"createdAt"`
	UpdatedAt wire.Time `json:"updatedAt"`
}

// Renderer turns Parley's records into the app's shapes, loading the users
// they reference in one query per call.
type Renderer struct {
	st    Store
	chats ChatLookup
}

// ChatLookup finds a chat for one of its members; *chat.Service implements it.
type ChatLookup interface {
	ChatOf(ctx context.Context, userID, chatID string) (*store.Chat, error)
}

// NewRenderer returns a renderer reading users from st and chats from chats.
func NewRenderer(st Store, chats ChatLookup) *Renderer { return &Renderer{st: st, chats: chats} }

// chatRec is a chat as either Parley source gives it (the chat service's
// view or a store record), with what rendering needs.
type chatRec struct {
	id, kind, name string
	members        []wire.Member
	createdAt      time.Time
	last           *wire.Message
}

func recFromView(v chat.View) chatRec {
	rec := recFromStore(v.Chat)
	if v.Last != nil {
		last := wire.NewMessage(v.Last)
		rec.last = &last
	}
	return rec
}

func recFromStore(c *store.Chat) chatRec {
	members := make([]wire.Member, len(c.Members))
	for i, m := range c.Members {
		members[i] = wire.Member{UserID: m.UserID, Role: m.Role}
	}
	return chatRec{id: c.ID, kind: c.Type, name: c.Name, members: members, createdAt: c.CreatedAt}
}

// userOf renders u: pic is its Parley avatar's URL, else the picture it
// came with from the app, else the app's default.
func userOf(u *store.User) User {
	pic := DefaultPic
	if v := wire.NewUser(u, false).AvatarURL; v != nil {
		pic = *v
	} else if u.PictureURL != "" {
		pic = u.PictureURL
	}
	return User{ID: u.ID, Name: u.DisplayName, Email: u.Email, Pic: pic}
}

// missingUser stands in for a user the store no longer has.
func missingUser(id string) User {
	return User{ID: id, Name: "Unknown user", Pic: DefaultPic}
}

type userSet map[string]*store.User

func (us userSet) user(id string) User {
	if u, ok := us[id]; ok {
		return userOf(u)
	}
	return missingUser(id)
}

func (us userSet) sender(id string) Sender {
	u := us.user(id)
	return Sender{ID: u.ID, Name: u.Name, Pic: u.Pic, Email: u.Email}
}

// load fetches the users named by ids, each once.
func (r *Renderer) load(ctx context.Context, ids []string) (userSet, error) {
	seen := map[string]bool{}
	uniq := make([]string, 0, len(ids))
	for _, id := range ids {
		if id != "" && !seen[id] {
			seen[id] = true
			uniq = append(uniq, id)
		}
	}
	users, err := r.st.UsersByIDs(ctx, uniq)
	if err != nil {
		return nil, fmt.Errorf("mern: load users: %w", err)
	}
	out := make(userSet, len(users))
	for i := range users {
		out[users[i].ID] = &users[i]
	}
	return out, nil
}

func (c chatRec) userIDs() []string {
	ids := make([]string, 0, len(c.members)+1)
	for _, m := range c.members {
		ids = append(ids, m.UserID)
	}
	if c.last != nil {
		ids = append(ids, c.last.SenderID)
	}
	return ids
}

// updatedAt is the chat's last activity: its newest message, else its creation.
func (c chatRec) updatedAt() time.Time {
	if c.last != nil {
		return c.last.CreatedAt.Time
	}
	return c.createdAt
}

// ChatRef is a chat whose users and groupAdmin are ids, as the app's
// history populates a message's chat.
type ChatRef struct {
	ID          string    `json:"_id"`
	ChatName    string    `json:"chatName"`
	IsGroupChat bool      `json:"isGroupChat"`
	Users       []string  `json:"users"`
	GroupAdmin  *string   `json:"groupAdmin,omitempty"`
	CreatedAt   wire.Time `json:"createdAt"`
	UpdatedAt   wire.Time `json:"updatedAt"`
}

func (c chatRec) ref() ChatRef {
	out := ChatRef{
		ID: c.id, ChatName: "sender", IsGroupChat: c.kind == store.ChatGroup, Users: make([]string, len(c.members)),
		CreatedAt: wire.Time{Time: c.createdAt}, UpdatedAt: wire.Time{Time: c.updatedAt()},
	}
	for i, m := range c.members {
		out.Users[i] = m.UserID
		if out.IsGroupChat && m.Role == store.RoleOwner {
			out.GroupAdmin = &out.Users[i]
		}
	}
	if out.IsGroupChat {
		out.ChatName = c.name
	}
	return out
}

func (c chatRec) render(us userSet) Chat {
	out := Chat{
		ID: c.id, ChatName: "sender", IsGroupChat: c.kind == store.ChatGroup,
		Users:     make([]User, len(c.members)),
		CreatedAt: wire.Time{Time: c.createdAt}, UpdatedAt: wire.Time{Time: c.updatedAt()},
	}
	for i, m := range c.members {
		out.Users[i] = us.user(m.UserID)
		if out.IsGroupChat && m.Role == store.RoleOwner {
			admin := out.Users[i]
			out.GroupAdmin = &admin
		}
	}
	if out.IsGroupChat {
		out.ChatName = c.name
	}
	if c.last != nil {
		lm := renderMessage(*c.last, c.id, us)
		out.LatestMessage = &lm
	}
	return out
}

// renderMessage renders m with chat as its chat field.
func renderMessage(m wire.Message, chat any, us userSet) Message {
	return Message{
		ID: m.ID, Sender: us.sender(m.SenderID), Content: Content(m), Chat: chat, ReadBy: []string{},
		CreatedAt: m.CreatedAt, UpdatedAt: m.CreatedAt,
	}
}

// Content is a message's text for the app, which needs a string (its UI
// calls content.length): an attachment-only message sent by a Parley client
// reads as the names of its files.
func Content(m wire.Message) string {
	if m.Text != nil && *m.Text != "" {
		return *m.Text
	}
	if len(m.Attachments) == 0 {
		return ""
	}
	names := make([]string, len(m.Attachments))
	for i, a := range m.Attachments {
		names[i] = a.Name
	}
	return "📎 " + strings.Join(names, ", ")
}

// Chats renders chats in the order given.
func (r *Renderer) Chats(ctx context.Context, views []chat.View) ([]Chat, error) {
	recs := make([]chatRec, len(views))
	var ids []string
	for i, v := range views {
		recs[i] = recFromView(v)
		ids = append(ids, recs[i].userIDs()...)
	}
	us, err := r.load(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]Chat, len(recs))
	for i, c := range recs {
		out[i] = c.render(us)
	}
	return out, nil
}

// Chat renders one chat.
func (r *Renderer) Chat(ctx context.Context, v chat.View) (Chat, error) {
	out, err := r.Chats(ctx, []chat.View{v})
	if err != nil {
		return Chat{}, err
	}
	return out[0], nil
}

// storedChat renders a chat as stored, without its latest message.
func (r *Renderer) storedChat(ctx context.Context, c *store.Chat) (Chat, error) {
	rec := recFromStore(c)
	us, err := r.load(ctx, rec.userIDs())
	if err != nil {
		return Chat{}, err
	}
	return rec.render(us), nil
}

// Messages renders msgs of the chat v for a chat's history: each message's
// chat is the chat with its users' ids, as the app's history populates it
// (whole users in every message of a long history of a big group would
// make the answer huge, and the app reads only the senders there).
func (r *Renderer) Messages(ctx context.Context, v chat.View, msgs []wire.Message) ([]Message, error) {
	rec := recFromView(v)
	ids := make([]string, 0, len(msgs))
	for _, m := range msgs {
		ids = append(ids, m.SenderID)
	}
	us, err := r.load(ctx, ids)
	if err != nil {
		return nil, err
	}
	chat := rec.ref()
	out := make([]Message, len(msgs))
	for i, m := range msgs {
		out[i] = renderMessage(m, &chat, us)
	}
	return out, nil
}

// Message renders one stored message with its chat populated, as delivered
// to the app's sockets, and returns the ids of the chat's members (as the
// sender, a member, sees the chat).
func (r *Renderer) Message(ctx context.Context, m wire.Message) (Message, []string, error) {
	c, err := r.chats.ChatOf(ctx, m.SenderID, m.ChatID)
	if err != nil {
		return Message{}, nil, fmt.Errorf("mern: load chat: %w", err)
	}
	rec := recFromStore(c)
	us, err := r.load(ctx, append(rec.userIDs(), m.SenderID))
	if err != nil {
		return Message{}, nil, err
	}
	chat := rec.render(us)
	chat.UpdatedAt = m.CreatedAt
	members := make([]string, len(rec.members))
	for i, mb := range rec.members {
		members[i] = mb.UserID
	}
	return renderMessage(m, &chat, us), members, nil
}

// Delivery is Message for the socket layer (events.MERNRenderer).
func (r *Renderer) Delivery(ctx context.Context, m wire.Message) (any, []string, error) {
	return r.Message(ctx, m)
}
