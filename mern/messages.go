package mern

import (
	"net/http"
	"slices"

	"github.com/go-chi/chi/v5"

	"github.com/parley-chat/parley/chat"
	"github.com/parley-chat/parley/internal/wire"
)

// historyCap bounds GET /api/message/:chatId, which the app reads whole:
// the newest messages up to this many.
const (
	historyCap  = 1000
	historyPage = 100
)

// allMessages is GET /api/message/:chatId: the chat's messages, oldest
// first (the newest historyCap of them).
func (a *API) allMessages(w http.ResponseWriter, r *http.Request) error {
	uid := identityFrom(r.Context()).UserID
	chatID := chi.URLParam(r, "chatId")
	v, err := a.chats.Get(r.Context(), uid, chatID)
	if err != nil {
		return chatNotFound(err)
	}
	var msgs []wire.Message
	q := chat.HistoryQuery{Limit: new(int)}
	*q.Limit = historyPage
	for len(msgs) < historyCap {
		page, more, err := a.chats.History(r.Context(), uid, chatID, q)
		if err != nil {
			return chatNotFound(err)
		}
		older := make([]wire.Message, len(page))
		for i := range page {
			older[i] = wire.NewMessage(&page[i])
		}
		msgs = append(older, msgs...)
		if !more || len(page) == 0 {
			break
		}
		before := page[0].Seq
		q.Before = &before
	}
	if len(msgs) > historyCap {
		msgs = slices.Clone(msgs[len(msgs)-historyCap:])
	}
	out, err := a.render.Messages(r.Context(), v, msgs)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// sendMessage is POST /api/message {content, chatId}; the app sends chatId
// as the whole chat object. The message is stored and delivered exactly as
// one sent through Parley's API: Parley clients get message:new, the app's
// sockets `message recieved`.
func (a *API) sendMessage(w http.ResponseWriter, r *http.Request) error {
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	content, err := b.str("content")
	if err != nil {
		return err
	}
	chatID, err := b.id("chatId")
	if err != nil {
		return err
	}
	if content == "" || chatID == "" {
		return badRequest("content and chatId are required")
	}
	sent, err := a.chats.Send(r.Context(), identityFrom(r.Context()).UserID, "", chat.SendInput{ChatID: chatID, Text: &content})
	if err != nil {
		return chatNotFound(err)
	}
	out, _, err := a.render.Message(r.Context(), sent.Rendered)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
