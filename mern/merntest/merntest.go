// Package merntest speaks to a running Parley as the MERN chat app's
// frontend does (its REST calls and its socket's setup), for the tests of
// package mern and of the whole process.
package merntest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/parley-chat/parley/internal/testenv/sioraw"
	"github.com/parley-chat/parley/internal/testenv/stack"
)

// Response is a MERN API answer: a bare array (List) or an object (Obj).
type Response struct {
	Status int
	Header http.Header
	Raw    []byte
	Obj    map[string]any
	List   []any
}

// Call sends a JSON request as the app's axios does.
func Call(t testing.TB, method, url, token string, body any) Response {
	t.Helper()
	req := stack.Request(t, method, url, token, body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := Response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if bytes.HasPrefix(raw, []byte("[")) {
		if err := json.Unmarshal(raw, &r.List); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, raw)
		}
	} else if err := json.Unmarshal(raw, &r.Obj); err != nil {
		t.Fatalf("%s %s: not JSON: %v: %s", method, url, err, raw)
	}
	return r
}

// Want fails unless the answer has status; an error answer must be the
// app's {message}.
func (r Response) Want(t testing.TB, what string, status int) Response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: %d %s, want %d", what, r.Status, r.Raw, status)
	}
	if status >= 400 {
		if msg, _ := r.Obj["message"].(string); msg == "" || len(r.Obj) != 1 {
			t.Fatalf("%s: error body %s, want {message}", what, r.Raw)
		}
	}
	return r
}

// User is a user signed up through the MERN API.
type User struct {
	ID, Name, Email, Password, Token string
}

// Signup signs up name through POST /api/user on the server at url.
func Signup(t testing.TB, url, name string) User {
	t.Helper()
	u := User{Name: name, Email: strings.ToLower(strings.ReplaceAll(name, " ", ".")) + "." + stack.RandomHex(3) + "@example.com", Password: "a long enough secret"}
	r := Call(t, "POST", url+"/api/user", "", map[string]any{"name": u.Name, "email": u.Email, "password": u.Password}).Want(t, "MERN signup", 201)
	u.ID, _ = r.Obj["_id"].(string)
	u.Token, _ = r.Obj["token"].(string)
	if u.ID == "" || u.Token == "" || r.Obj["name"] != name || r.Obj["email"] != u.Email || r.Obj["isAdmin"] != false || r.Obj["pic"] == "" {
		t.Fatalf("MERN signup answered %s", r.Raw)
	}
	return u
}

// Sock connects as the app does (no credentials) and sends setup.
func Sock(t testing.TB, url string, u User) *sioraw.Client {
	t.Helper()
	c := Connect(t, url, nil)
	c.Emit(`["setup",` + MustJSON(t, map[string]any{"_id": u.ID, "name": u.Name, "token": u.Token}) + `]`)
	c.Event("connected")
	return c
}

// Connect opens a socket and connects the namespace without auth, as
// io(ENDPOINT) does; header goes with the upgrade (e.g. a cookie).
func Connect(t testing.TB, url string, header http.Header) *sioraw.Client {
	t.Helper()
	c := sioraw.Dial(t, url, "", header)
	c.Send("40")
	c.Expect("CONNECT answer", func(f string) bool { return strings.HasPrefix(f, "40") })
	return c
}

// MustJSON encodes v.
func MustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// WantNoPassword fails if anything in raw looks like a password (hash).
func WantNoPassword(t testing.TB, what string, raw []byte) {
	t.Helper()
	if bytes.Contains(raw, []byte("$2a$")) || bytes.Contains(raw, []byte("$2b$")) || bytes.Contains(raw, []byte("password")) {
		t.Fatalf("%s leaks a password (hash): %s", what, raw)
	}
}
