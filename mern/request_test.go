package mern

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apperr"
	"github.com/parley-chat/parley/internal/wire"
)

func TestBodyIDs(t *testing.T) {
	cases := []struct {
		body    string
		want    []string
		present bool
		bad     bool
	}{
		{`{"users":"[\"a\",\"b\"]"}`, []string{"a", "b"}, true, false}, // the app: a JSON-encoded string
		{`{"users":["a","b"]}`, []string{"a", "b"}, true, false},
		{`{"users":[{"_id":"a"}]}`, []string{"a"}, true, false},
		{`{"users":"[]"}`, []string{}, true, false},
		{`{}`, nil, false, false},
		{`{"users":null}`, nil, false, false},
		{`{"users":"not json"}`, nil, true, true},
		{`{"users":[1,2]}`, nil, true, true},
		{`{"users":[""]}`, nil, true, true},
		{`{"users":{"_id":"a"}}`, nil, true, true},
	}
	for _, tc := range cases {
		var b body
		if err := json.Unmarshal([]byte(tc.body), &b); err != nil {
			t.Fatal(err)
		}
		got, present, err := b.ids("users")
		if (err != nil) != tc.bad || present != tc.present || (!tc.bad && !slices.Equal(got, tc.want)) {
			t.Errorf("%s: %v %v %v, want %v %v bad=%v", tc.body, got, present, err, tc.want, tc.present, tc.bad)
		}
	}
}

func TestBodyID(t *testing.T) {
	cases := map[string]struct {
		want string
		bad  bool
	}{
		`{"chatId":"abc"}`: {"abc", false},
		`{"chatId":{"_id":"abc","chatName":"sender"}}`: {"abc", false}, // the app sends the whole chat
		`{"chatId":null}`:         {"", false},
		`{}`:                      {"", false},
		`{"chatId":5}`:            {"", true},
		`{"chatId":{"id":"abc"}}`: {"", true},
	}
	for in, tc := range cases {
		var b body
		if err := json.Unmarshal([]byte(in), &b); err != nil {
			t.Fatal(err)
		}
		got, err := b.id("chatId")
		if got != tc.want || (err != nil) != tc.bad {
			t.Errorf("%s: %q %v, want %q bad=%v", in, got, err, tc.want, tc.bad)
		}
	}
}

func TestWriteError(t *testing.T) {
	a := New(Deps{})
	cases := []struct {
		err    error
		status int
		msg    string
	}{
		{apperr.New(apperr.Conflict, "User already exists"), 400, "User already exists"},
		{apperr.Field("password", "at least 8 bytes"), 400, "password: at least 8 bytes"},
		{apperr.New(apperr.NotFound, "Chat Not Found"), 404, "Chat Not Found"},
		{apperr.New(apperr.Forbidden, "only the owner"), 403, "only the owner"},
		{&apperr.Error{Code: apperr.RateLimited, Message: "slow down", RetryAfter: 1500 * time.Millisecond}, 429, "slow down"},
		{errorString("database exploded: secret detail"), 500, "internal error"},
	}
	for _, tc := range cases {
		rec := httptest.NewRecorder()
		a.writeError(rec, httptest.NewRequest("GET", "/api/chat", nil), tc.err)
		var got map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if rec.Code != tc.status || got["message"] != tc.msg || len(got) != 1 {
			t.Errorf("%v: %d %s, want %d {message: %q}", tc.err, rec.Code, rec.Body, tc.status, tc.msg)
		}
		if tc.status == http.StatusTooManyRequests && rec.Header().Get("Retry-After") != "2" {
			t.Errorf("Retry-After %q", rec.Header().Get("Retry-After"))
		}
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

func TestContent(t *testing.T) {
	text := "hi"
	cases := []struct {
		m    wire.Message
		want string
	}{
		{wire.Message{Text: &text}, "hi"},
		{wire.Message{Attachments: []wire.Attachment{{Name: "a.png"}, {Name: "b.pdf"}}}, "📎 a.png, b.pdf"},
		{wire.Message{Text: &text, Attachments: []wire.Attachment{{Name: "a.png"}}}, "hi"},
	}
	for _, tc := range cases {
		if got := Content(tc.m); got != tc.want {
			t.Errorf("Content = %q, want %q", got, tc.want)
		}
	}
}

func TestUsernameBase(t *testing.T) {
	cases := map[[2]string]string{
		{"Mary Mern", "m@example.com"}:       "mary.mern",
		{"Zoë", "zoe.smith@example.com"}:     "zoe.smith", // "zo" is too short: the email's
		{"李雷", "li@example.com"}:             "user",
		{"  --Al--  ", "al@example.com"}:     "user",
		{strings.Repeat("x", 40), "x@e.com"}: strings.Repeat("x", 24),
	}
	for in, want := range cases {
		if got := usernameBase(in[0], in[1]); got != want {
			t.Errorf("usernameBase(%q, %q) = %q, want %q", in[0], in[1], got, want)
		}
	}
}
