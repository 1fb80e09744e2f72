package web

import (
	"context"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/apperr"
	"github.com/parley-chat/parley/internal/str"
	"github.com/parley-chat/parley/internal/wire"
	"github.com/parley-chat/parley/store"
)

// ChatService is the chat domain as the REST handlers use it; *chat.Service
// implements it.
type ChatService interface {
	List(ctx context.Context, userID string) ([]chat.View, error)
	Get(ctx context.Context, userID, chatID string) (chat.View, error)
	CreateDirect(ctx context.Context, userID, otherID string) (chat.View, bool, error)
	CreateGroup(ctx context.Context, userID string, name *string, users []string) (chat.View, error)
	Rename(ctx context.Context, userID, chatID string, name *string) (chat.View, error)
	AddMembers(ctx context.Context, userID, chatID string, userIDs []string) (chat.View, error)
	RemoveMember(ctx context.Context, userID, chatID, targetID string) error
	Send(ctx context.Context, userID, origin string, in chat.SendInput) (chat.Sent, error)
	History(ctx context.Context, userID, chatID string, q chat.HistoryQuery) ([]store.Message, bool, error)
	MarkRead(ctx context.Context, userID, origin, chatID string, seq int64) error
}

func (s *server) chatRoutes(r chi.Router) {
	r.Get("/chats", s.handle(s.listChats))
	r.Post("/chats", s.handle(s.createChat))
	r.Get("/chats/{id}", s.handle(s.getChat))
	r.Patch("/chats/{id}", s.handle(s.renameChat))
	r.Post("/chats/{id}/members", s.handle(s.addMembers))
	r.Delete("/chats/{id}/members/{userId}", s.handle(s.removeMember))
	r.Get("/chats/{id}/messages", s.handle(s.history))
	r.Post("/chats/{id}/messages", s.handle(s.sendMessage))
	r.Post("/chats/{id}/read", s.handle(s.markRead))
}

// writeChat answers a chat view, rendered by internal/wire.
func writeChat(w http.ResponseWriter, status int, v chat.View, err error) error {
	if err != nil {
		return err
	}
	writeJSON(w, status, wire.NewChat(v.Chat, v.Last, v.Unread))
	return nil
}

func (s *server) listChats(w http.ResponseWriter, r *http.Request) error {
	views, err := s.chats.List(r.Context(), identityFrom(r.Context()).UserID)
	if err != nil {
		return err
	}
	out := make([]wire.Chat, len(views))
	for i, v := range views {
		out[i] = wire.NewChat(v.Chat, v.Last, v.Unread)
	}
	writeJSON(w, http.StatusOK, map[string]any{"chats": out})
	return nil
}

type createChatRequest struct {
	Type      *string  `json:"type"`
	UserID    *string  `json:"userId"`
	Name      *string  `json:"name"`
	MemberIDs []string `json:"memberIds"`
}

func (s *server) createChat(w http.ResponseWriter, r *http.Request) error {
	var req createChatRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	uid := identityFrom(r.Context()).UserID
	switch str.Deref(req.Type) {
	case store.ChatDirect:
		if req.UserID == nil {
			return apperr.Field("userId", "required")
		}
		v, created, err := s.chats.CreateDirect(r.Context(), uid, *req.UserID)
		return writeChat(w, createdStatus(created), v, err)
	case store.ChatGroup:
		v, err := s.chats.CreateGroup(r.Context(), uid, req.Name, req.MemberIDs)
		return writeChat(w, http.StatusCreated, v, err)
	default:
		return apperr.Field("type", `must be "direct" or "group"`)
	}
}

// createdStatus is 201 for something new, 200 for what already was.
func createdStatus(created bool) int {
	if created {
		return http.StatusCreated
	}
	return http.StatusOK
}

func (s *server) getChat(w http.ResponseWriter, r *http.Request) error {
	v, err := s.chats.Get(r.Context(), identityFrom(r.Context()).UserID, chi.URLParam(r, "id"))
	return writeChat(w, http.StatusOK, v, err)
}

func (s *server) renameChat(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name *string `json:"name"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	v, err := s.chats.Rename(r.Context(), identityFrom(r.Context()).UserID, chi.URLParam(r, "id"), req.Name)
	return writeChat(w, http.StatusOK, v, err)
}

func (s *server) addMembers(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		UserIDs []string `json:"userIds"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	v, err := s.chats.AddMembers(r.Context(), identityFrom(r.Context()).UserID, chi.URLParam(r, "id"), req.UserIDs)
	return writeChat(w, http.StatusOK, v, err)
}

func (s *server) removeMember(w http.ResponseWriter, r *http.Request) error {
	err := s.chats.RemoveMember(r.Context(), identityFrom(r.Context()).UserID, chi.URLParam(r, "id"), chi.URLParam(r, "userId"))
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) history(w http.ResponseWriter, r *http.Request) error {
	var q chat.HistoryQuery
	qs := r.URL.Query()
	for _, p := range []struct {
		name string
		dst  **int64
	}{{"before", &q.Before}, {"after", &q.After}} {
		if v := qs.Get(p.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return apperr.Field(p.name, "must be a whole number")
			}
			*p.dst = &n
		}
	}
	if v := qs.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return apperr.Field("limit", "must be a whole number")
		}
		q.Limit = &n
	}
	msgs, more, err := s.chats.History(r.Context(), identityFrom(r.Context()).UserID, chi.URLParam(r, "id"), q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.NewHistory(msgs, more))
	return nil
}

type sendRequest struct {
	Text        *string  `json:"text"`
	Attachments []string `json:"attachments"`
	ClientMsgID *string  `json:"clientMsgId"`
}

func (s *server) sendMessage(w http.ResponseWriter, r *http.Request) error {
	var req sendRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	sent, err := s.chats.Send(r.Context(), identityFrom(r.Context()).UserID, "", chat.SendInput{
		ChatID: chi.URLParam(r, "id"), Text: req.Text, Attachments: req.Attachments, ClientMsgID: req.ClientMsgID,
	})
	if err != nil {
		return err
	}
	writeJSON(w, createdStatus(sent.Created), sent.Rendered)
	return nil
}

func (s *server) markRead(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Seq *int64 `json:"seq"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.Seq == nil {
		return apperr.Field("seq", "required")
	}
	if err := s.chats.MarkRead(r.Context(), identityFrom(r.Context()).UserID, "", chi.URLParam(r, "id"), *req.Seq); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
