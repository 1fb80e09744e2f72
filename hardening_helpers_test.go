package main

import (
	"net/http"
	"testing"

	"github.com/parley-chat/parley/internal/testenv/sioraw"
	"github.com/parley-chat/parley/internal/testenv/stack"
)

// Socket and chat helpers for the root's hardening tests, on the stack's
// HTTP helpers.

var (
	do        = stack.Do
	randomHex = stack.RandomHex
)

// connectSock opens a websocket and connects the namespace as token.
func connectSock(t *testing.T, srv *testServer, token string) *sioraw.Client {
	t.Helper()
	c := sioraw.Dial(t, srv.URL, "", nil)
	c.MustConnect(token)
	return c
}

// newDirectChat opens (or finds) the direct chat of a and b.
func newDirectChat(t *testing.T, srv *testServer, a, b account) string {
	t.Helper()
	r := call(t, "POST", srv.URL+"/api/chats", a.Token, map[string]any{"type": "direct", "userId": b.ID})
	if r.Status != http.StatusCreated && r.Status != http.StatusOK {
		t.Fatalf("create direct chat: %d %s", r.Status, r.Raw)
	}
	return r.Body["id"].(string)
}

// sendSock sends text over the socket and fails unless it is stored.
func sendSock(t *testing.T, c *sioraw.Client, chatID, text string) {
	t.Helper()
	if ack := c.CallOne("message:send", map[string]any{"chatId": chatID, "text": text}); ack["ok"] != true {
		t.Fatalf("message:send answered %v", ack)
	}
}

// wantAckError checks a socket ack is {ok: false, error: {code, message}}.
func wantAckError(t *testing.T, what string, ack map[string]any, code string) {
	t.Helper()
	e, _ := ack["error"].(map[string]any)
	if ack["ok"] != false || e == nil || e["code"] != code || e["message"] == nil {
		t.Fatalf("%s: ack %v, want error %s", what, ack, code)
	}
}

// wantRESTError checks an error answer's status and code.
func wantRESTError(t *testing.T, what string, r response, status int, code string) {
	t.Helper()
	if r.Status != status || r.ErrorCode() != code {
		t.Fatalf("%s: %d %s, want %d %s", what, r.Status, r.Raw, status, code)
	}
}

// historyLen counts a chat's messages (at most 100, enough here).
func historyLen(t *testing.T, srv *testServer, token, chatID string) int {
	t.Helper()
	r := call(t, "GET", srv.URL+"/api/chats/"+chatID+"/messages?limit=100", token, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("history: %d %s", r.Status, r.Raw)
	}
	return len(r.Body["messages"].([]any))
}
