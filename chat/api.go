// Package chat is Parley's chat domain: chats, members, messages, read marks
// and typing. REST handlers and socket events both call it, so a message
// sent either way takes one code path.
package chat

// Broadcaster delivers events to live connections. The events package
// implements it over Socket.IO rooms: `user:<uid>` holds every socket of a
// user, `chat:<cid>` every socket of every member.
//
// origin is the id of the connection an action came from ("" for REST), so
// that the sender's own socket can be left out where the contract says so.
type Broadcaster interface {
	// ToChat emits to every socket in the chat's room except origin's.
	ToChat(chatID, event string, payload any, origin string)
	// ToUsers emits to every socket of each user.
	ToUsers(userIDs []string, event string, payload any)
	// JoinChat makes every live socket of the users join the chat's room;
	// LeaveChat makes them leave it.
	JoinChat(userIDs []string, chatID string)
	LeaveChat(userIDs []string, chatID string)
}

// Event names, as on the wire.
const (
	EventMessageNew  = "message:new"
	EventMessageRead = "message:read"
	EventTyping      = "typing"
	EventChatNew     = "chat:new"
	EventChatUpdate  = "chat:update"
	EventChatRemoved = "chat:removed"
)

// SendInput is a message to send. Pointers tell "absent" from "empty".
type SendInput struct {
	ChatID      string
	Text        *string
	Attachments []string
	ClientMsgID *string
}

// HistoryQuery pages a chat's history; nil means absent.
type HistoryQuery struct {
	Before *int64
	After  *int64
	Limit  *int
}

// Limits are the contract's configurable bounds.
type Limits struct {
	MaxText        int // code points
	MaxAttachments int
	MaxGroup       int
	MaxPage        int
	DefaultPage    int
	MaxClientMsgID int
}

// DefaultLimits are the contract's defaults.
var DefaultLimits = Limits{MaxText: 4000, MaxAttachments: 10, MaxGroup: 1000, MaxPage: 100, DefaultPage: 50, MaxClientMsgID: 64}
