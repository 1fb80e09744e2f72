package web

import (
	"context"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/apperr"
	"github.com/parley-chat/parley/internal/wire"
	"github.com/parley-chat/parley/store"
)

// ChatService is the chat domain as the REST handlers use it.
type ChatService interface {
	List(ctx context.Context, userID string) ([]wire.Chat, error)
	Get(ctx context.Context, userID, chatID string) (wire.Chat, error)
	CreateDirect(ctx context.Context, userID, otherID string) (wire.Chat, bool, error)
	CreateGroup(ctx context.Context, userID string, name *string, users []string) (wire.Chat, error)
	Rename(ctx context.Context, userID, chatID string, name *string) (wire.Chat, error)
	AddMembers(ctx context.Context, userID, chatID string, userIDs []string) (wire.Chat, error)
	RemoveMember(ctx context.Context, userID, chatID, targetID string) error
	Send(ctx context.Context, userID, origin string, in chat.SendInput) (*store.Message, bool, error)
	History(ctx context.Context, userID, chatID string, q chat.HistoryQuery) ([]store.Message, bool, error)
	MarkRead(ctx context.Context, userID, origin, chatID string, seq int64) error
}

func (s *server) chatRoutes(r chi.Router) {
	r.Get("/chats", s.listChats)
	r.Post("/chats", s.createChat)
	r.Get("/chats/{id}", s.getChat)
	r.Patch("/chats/{id}", s.renameChat)
	r.Post("/chats/{id}/members", s.addMembers)
	r.Delete("/chats/{id}/members/{userId}", s.removeMember)
	r.Get("/chats/{id}/messages", s.history)
	r.Post("/chats/{id}/messages", s.sendMessage)
	r.Post("/chats/{id}/read", s.markRead)
}

func (s *server) listChats(w http.ResponseWriter, r *http.Request) {
	chats, err := s.chats.List(r.Context(), identityFrom(r.Context()).UserID)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"chats": chats})
}

type createChatRequest struct {
	Type      *string  `json:"type"`
	UserID    *string  `json:"userId"`
	Name      *string  `json:"name"`
	MemberIDs []string `json:"memberIds"`
}

func (s *server) createChat(w http.ResponseWriter, r *http.Request) {
	var req createChatRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	uid := identityFrom(r.Context()).UserID
	switch deref(req.Type) {
	case store.ChatDirect:
		if req.UserID == nil {
			writeError(w, r, s.log, apperr.Field("userId", "required"))
			return
		}
		c, created, err := s.chats.CreateDirect(r.Context(), uid, *req.UserID)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		writeJSON(w, status, c)
	case store.ChatGroup:
		c, err := s.chats.CreateGroup(r.Context(), uid, req.Name, req.MemberIDs)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		writeJSON(w, http.StatusCreated, c)
	default:
		writeError(w, r, s.log, apperr.Field("type", `must be "direct" or "group"`))
	}
}

func (s *server) getChat(w http.ResponseWriter, r *http.Request) {
	c, err := s.chats.Get(r.Context(), identityFrom(r.Context()).UserID, chi.URLParam(r, "id"))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *server) renameChat(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name *string `json:"name"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	c, err := s.chats.Rename(r.Context(), identityFrom(r.Context()).UserID, chi.URLParam(r, "id"), req.Name)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *server) addMembers(w http.ResponseWriter, r *http.Request) {
	var req struct {
		UserIDs []string `json:"userIds"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	c, err := s.chats.AddMembers(r.Context(), identityFrom(r.Context()).UserID, chi.URLParam(r, "id"), req.UserIDs)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *server) removeMember(w http.ResponseWriter, r *http.Request) {
	err := s.chats.RemoveMember(r.Context(), identityFrom(r.Context()).UserID, chi.URLParam(r, "id"), chi.URLParam(r, "userId"))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) history(w http.ResponseWriter, r *http.Request) {
	var q chat.HistoryQuery
	qs := r.URL.Query()
	for _, p := range []struct {
		name string
		dst  **int64
	}{{"before", &q.Before}, {"after", &q.After}} {
		if v := qs.Get(p.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				writeError(w, r, s.log, apperr.Field(p.name, "must be a whole number"))
				return
			}
			*p.dst = &n
		}
	}
	if v := qs.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeError(w, r, s.log, apperr.Field("limit", "must be a whole number"))
			return
		}
		q.Limit = &n
	}
	msgs, more, err := s.chats.History(r.Context(), identityFrom(r.Context()).UserID, chi.URLParam(r, "id"), q)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, HistoryPage(msgs, more))
}

// HistoryPage renders a history page, as REST and the socket ack send it.
func HistoryPage(msgs []store.Message, more bool) map[string]any {
	out := make([]wire.Message, len(msgs))
	for i := range msgs {
		out[i] = wire.NewMessage(&msgs[i])
	}
	return map[string]any{"messages": out, "hasMore": more}
}

type sendRequest struct {
	Text        *string  `json:"text"`
	Attachments []string `json:"attachments"`
	ClientMsgID *string  `json:"clientMsgId"`
}

func (s *server) sendMessage(w http.ResponseWriter, r *http.Request) {
	var req sendRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	m, created, err := s.chats.Send(r.Context(), identityFrom(r.Context()).UserID, "", chat.SendInput{
		ChatID: chi.URLParam(r, "id"), Text: req.Text, Attachments: req.Attachments, ClientMsgID: req.ClientMsgID,
	})
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, wire.NewMessage(m))
}

func (s *server) markRead(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Seq *int64 `json:"seq"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if req.Seq == nil {
		writeError(w, r, s.log, apperr.Field("seq", "required"))
		return
	}
	if err := s.chats.MarkRead(r.Context(), identityFrom(r.Context()).UserID, "", chi.URLParam(r, "id"), *req.Seq); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
