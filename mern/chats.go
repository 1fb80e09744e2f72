package mern

import (
	"errors"
	"net/http"
	"slices"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/apperr"
	"github.com/parley-chat/parley/store"
)

// errChatNotFound is the app's 404 for a chat the caller cannot see.
func chatNotFound(err error) error {
	if apperr.From(err).Code == apperr.NotFound {
		return apperr.Wrap(apperr.NotFound, "Chat Not Found", err)
	}
	return err
}

func (a *API) answerChat(w http.ResponseWriter, r *http.Request, v chat.View) error {
	c, err := a.render.Chat(r.Context(), v)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

// listChats is GET /api/chat: the caller's chats, most recently active first.
func (a *API) listChats(w http.ResponseWriter, r *http.Request) error {
	views, err := a.chats.List(r.Context(), identityFrom(r.Context()).UserID)
	if err != nil {
		return err
	}
	out, err := a.render.Chats(r.Context(), views)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// accessChat is POST /api/chat {userId}: the direct chat with that user,
// created when missing.
func (a *API) accessChat(w http.ResponseWriter, r *http.Request) error {
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	other, err := b.id("userId")
	if err != nil {
		return err
	}
	if other == "" {
		return badRequest("userId is required")
	}
	v, _, err := a.chats.CreateDirect(r.Context(), identityFrom(r.Context()).UserID, other)
	if err != nil {
		return err
	}
	return a.answerChat(w, r, v)
}

// createGroup is POST /api/chat/group {name, users}: users is a
// JSON-encoded array of user ids, at least two besides the caller, who
// becomes the group's owner (the app's groupAdmin).
func (a *API) createGroup(w http.ResponseWriter, r *http.Request) error {
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	name, err1 := b.str("name")
	users, present, err2 := b.ids("users")
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if name == "" || !present {
		return badRequest("Please fill all the fields: name and users")
	}
	if len(users) < 2 {
		return badRequest("More than 2 users are required to form a group chat")
	}
	v, err := a.chats.CreateGroup(r.Context(), identityFrom(r.Context()).UserID, &name, users)
	if err != nil {
		return err
	}
	return a.answerChat(w, r, v)
}

// groupRequest reads {chatId, <field>}, both required.
func groupRequest(w http.ResponseWriter, r *http.Request, field string) (chatID, value string, err error) {
	b, err := readBody(w, r)
	if err != nil {
		return "", "", err
	}
	chatID, err1 := b.id("chatId")
	if field == "userId" {
		value, err = b.id(field)
	} else {
		value, err = b.str(field)
	}
	if err := errors.Join(err1, err); err != nil {
		return "", "", err
	}
	if chatID == "" || value == "" {
		return "", "", badRequest("chatId and " + field + " are required")
	}
	return chatID, value, nil
}

// renameGroup is PUT /api/chat/rename {chatId, chatName} (owner or admin).
func (a *API) renameGroup(w http.ResponseWriter, r *http.Request) error {
	chatID, name, err := groupRequest(w, r, "chatName")
	if err != nil {
		return err
	}
	v, err := a.chats.Rename(r.Context(), identityFrom(r.Context()).UserID, chatID, &name)
	if err != nil {
		return chatNotFound(err)
	}
	return a.answerChat(w, r, v)
}

// addToGroup is PUT /api/chat/groupadd {chatId, userId} (owner or admin).
func (a *API) addToGroup(w http.ResponseWriter, r *http.Request) error {
	chatID, userID, err := groupRequest(w, r, "userId")
	if err != nil {
		return err
	}
	v, err := a.chats.AddMembers(r.Context(), identityFrom(r.Context()).UserID, chatID, []string{userID})
	if err != nil {
		return chatNotFound(err)
	}
	return a.answerChat(w, r, v)
}

// removeFromGroup is PUT /api/chat/groupremove {chatId, userId}: the owner
// removes anyone, an admin removes members, and anyone may remove
// themselves (leaving). The answer is the chat as it now is; to one who
// left, who can no longer read it, the chat as it was without them.
func (a *API) removeFromGroup(w http.ResponseWriter, r *http.Request) error {
	chatID, userID, err := groupRequest(w, r, "userId")
	if err != nil {
		return err
	}
	uid := identityFrom(r.Context()).UserID
	before, err := a.chats.ChatOf(r.Context(), uid, chatID)
	if err != nil {
		return chatNotFound(err)
	}
	if err := a.chats.RemoveMember(r.Context(), uid, chatID, userID); err != nil {
		return chatNotFound(err)
	}
	if userID != uid {
		v, err := a.chats.Get(r.Context(), uid, chatID)
		if err != nil {
			return err
		}
		return a.answerChat(w, r, v)
	}
	before.Members = slices.DeleteFunc(before.Members, func(m store.Member) bool { return m.UserID == uid })
	out, err := a.render.storedChat(r.Context(), before)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
