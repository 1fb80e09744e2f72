package main

// The MERN compatibility API (package mern, events/mern.go) against a live
// Parley: both APIs on one set of users, chats and messages, and the app's
// sockets beside native ones. The app's own flows, replayed with its pinned
// socket.io-client and axios, are in scripts/mern.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/parley-chat/parley/internal/testenv"
	"github.com/parley-chat/parley/internal/testenv/sioraw"
	"github.com/parley-chat/parley/mern/importer/importertest"
)

// mernResponse is a MERN API answer: a bare array or an object.
type mernResponse struct {
	Status int
	Header http.Header
	Raw    []byte
	Obj    map[string]any
	List   []any
}

// mernCall sends a JSON request as the app's axios does.
func mernCall(t *testing.T, method, url, token string, body any) mernResponse {
	t.Helper()
	req := jsonRequest(t, method, url, token, body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := mernResponse{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if bytes.HasPrefix(raw, []byte("[")) {
		if err := json.Unmarshal(raw, &r.List); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, raw)
		}
	} else if err := json.Unmarshal(raw, &r.Obj); err != nil {
		t.Fatalf("%s %s: not JSON: %v: %s", method, url, err, raw)
	}
	return r
}

func (r mernResponse) want(t *testing.T, what string, status int) mernResponse {
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

// mernUser is a user signed up through the MERN API.
type mernUser struct {
	ID, Name, Email, Password, Token string
}

func mernSignup(t *testing.T, srv *testServer, name string) mernUser {
	t.Helper()
	u := mernUser{Name: name, Email: strings.ToLower(strings.ReplaceAll(name, " ", ".")) + "." + randomHex(3) + "@example.com", Password: "a long enough secret"}
	r := mernCall(t, "POST", srv.URL+"/api/user", "", map[string]any{"name": u.Name, "email": u.Email, "password": u.Password}).want(t, "MERN signup", 201)
	u.ID, _ = r.Obj["_id"].(string)
	u.Token, _ = r.Obj["token"].(string)
	if u.ID == "" || u.Token == "" || r.Obj["name"] != name || r.Obj["email"] != u.Email || r.Obj["isAdmin"] != false || r.Obj["pic"] == "" {
		t.Fatalf("MERN signup answered %s", r.Raw)
	}
	return u
}

// mernSock connects as the app does (no credentials) and sends setup.
func mernSock(t *testing.T, srv *testServer, u mernUser) *sioraw.Client {
	t.Helper()
	c := sioraw.Dial(t, srv.URL, "", nil)
	c.Send("40")
	c.Expect("CONNECT answer", func(f string) bool { return strings.HasPrefix(f, "40") })
	c.Emit(`["setup",` + mustJSON(t, map[string]any{"_id": u.ID, "name": u.Name, "token": u.Token}) + `]`)
	c.Event("connected")
	return c
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// wantNoPassword fails if anything in raw looks like a password hash.
func wantNoPassword(t *testing.T, what string, raw []byte) {
	t.Helper()
	if bytes.Contains(raw, []byte("$2a$")) || bytes.Contains(raw, []byte("$2b$")) || bytes.Contains(raw, []byte("password")) {
		t.Fatalf("%s leaks a password (hash): %s", what, raw)
	}
}

func TestMERNCrossAPI(t *testing.T) {
	forEachStore(t, func(t *testing.T, srv *testServer, _ Config) {
		// A user of each API, each usable through the other.
		mary := mernSignup(t, srv, "Mary Mern")
		nate := signup(t, srv, "nate")
		login := call(t, "POST", srv.URL+"/api/auth/login", "", map[string]any{"login": mary.Email, "password": mary.Password})
		if login.Status != 200 || login.Body["user"].(map[string]any)["displayName"] != "Mary Mern" {
			t.Fatalf("MERN user logs in through Parley's API: %d %s", login.Status, login.Raw)
		}
		if u := login.Body["user"].(map[string]any)["username"].(string); !strings.HasPrefix(u, "mary.mern") {
			t.Fatalf("generated username %q, want it made from the name", u)
		}
		nateM := mernCall(t, "POST", srv.URL+"/api/user/login", "", map[string]any{"email": nate.Email, "password": nate.Password}).want(t, "Parley user logs in through the MERN API", 200)
		if nateM.Obj["_id"] != nate.ID || nateM.Obj["name"] != nate.Username || nateM.Obj["token"] == "" {
			t.Fatalf("MERN login of a Parley user: %s", nateM.Raw)
		}
		wantNoPassword(t, "MERN login", nateM.Raw)
		mernCall(t, "POST", srv.URL+"/api/user/login", "", map[string]any{"email": nate.Email, "password": "wrong password"}).want(t, "wrong password", 401)
		mernCall(t, "POST", srv.URL+"/api/user", "", map[string]any{"name": "Again", "email": mary.Email, "password": "another secret"}).want(t, "email taken", 400)
		mernCall(t, "POST", srv.URL+"/api/user", "", map[string]any{"name": "No Password", "email": "np@example.com"}).want(t, "missing field", 400)
		mernCall(t, "POST", srv.URL+"/api/user", "", map[string]any{"name": "Short", "email": "short@example.com", "password": "123456"}).want(t, "Parley's password rule", 400)
		mernCall(t, "POST", srv.URL+"/api/user", "", map[string]any{"name": "Js", "email": "js@example.com", "password": "long enough!", "pic": "javascript:alert(1)"}).want(t, "a pic that is no http(s) URL", 400)
		pic := "https://res.cloudinary.com/demo/image/upload/sample.jpg"
		withPic := mernCall(t, "POST", srv.URL+"/api/user", "", map[string]any{"name": "Pat Pic", "email": "pat." + randomHex(3) + "@example.com", "password": "long enough!", "pic": pic}).want(t, "signup with pic", 201)
		if withPic.Obj["pic"] != pic {
			t.Fatalf("pic not kept: %s", withPic.Raw)
		}
		mernCall(t, "GET", srv.URL+"/api/chat", "", nil).want(t, "no token", 401)
		mernCall(t, "GET", srv.URL+"/api/chat", "not-a-token", nil).want(t, "bad token", 401)

		// Search by a piece of the email, any case; never the caller.
		found := mernCall(t, "GET", srv.URL+"/api/user?search="+strings.ToUpper(nate.Email[:6]), mary.Token, nil).want(t, "search", 200)
		if len(found.List) != 1 || found.List[0].(map[string]any)["_id"] != nate.ID {
			t.Fatalf("search: %s", found.Raw)
		}
		wantNoPassword(t, "search", found.Raw)
		if self := mernCall(t, "GET", srv.URL+"/api/user?search=mary", mary.Token, nil).want(t, "search self", 200); len(self.List) != 0 {
			t.Fatalf("search lists the caller: %s", self.Raw)
		}

		// The direct chat, from the MERN side; Parley's API sees the same one.
		direct := mernCall(t, "POST", srv.URL+"/api/chat", mary.Token, map[string]any{"userId": nate.ID}).want(t, "access chat", 200)
		chatID := direct.Obj["_id"].(string)
		if direct.Obj["isGroupChat"] != false || direct.Obj["chatName"] != "sender" || len(direct.Obj["users"].([]any)) != 2 {
			t.Fatalf("direct chat: %s", direct.Raw)
		}
		if again := newDirectChat(t, srv, nate, account{ID: mary.ID}); again != chatID {
			t.Fatalf("Parley's API found direct chat %s, MERN made %s", again, chatID)
		}

		ms := mernSock(t, srv, mary)
		ns := connectSock(t, srv, nate.Token)

		// Native → MERN: the full message shape, as `message recieved`.
		sent := sendSock(t, ns, chatID, "hello from Parley", "")
		got := ms.EventWhere("message recieved", nil)[0].(map[string]any)
		chat, _ := got["chat"].(map[string]any)
		sender, _ := got["sender"].(map[string]any)
		if got["_id"] != sent["id"] || got["content"] != "hello from Parley" || sender["_id"] != nate.ID || sender["name"] != nate.Username ||
			chat["_id"] != chatID || len(chat["users"].([]any)) != 2 || got["createdAt"] == nil {
			t.Fatalf("message recieved: %v", got)
		}

		// MERN → native: POST /api/message with the whole chat object as chatId.
		posted := mernCall(t, "POST", srv.URL+"/api/message", mary.Token, map[string]any{"content": "hi from MERN", "chatId": direct.Obj}).want(t, "send", 200)
		if posted.Obj["content"] != "hi from MERN" || posted.Obj["chat"].(map[string]any)["_id"] != chatID || posted.Obj["sender"].(map[string]any)["_id"] != mary.ID {
			t.Fatalf("POST /api/message: %s", posted.Raw)
		}
		nm := ns.Payload("message:new", msgIn(chatID, "hi from MERN"))
		if nm["id"] != posted.Obj["_id"] || nm["senderId"] != mary.ID || nm["seq"] != float64(2) {
			t.Fatalf("message:new for a MERN send: %v", nm)
		}
		// The app relays its own send; that must not deliver it twice.
		ms.Emit(`["new message",` + string(posted.Raw) + `]`)

		// Typing crosses over both ways.
		ms.Emit(`["join chat","` + chatID + `"]`)
		ms.Emit(`["typing","` + chatID + `"]`)
		tp := ns.Payload("typing", ofChatPayload(chatID))
		if tp["userId"] != mary.ID || tp["isTyping"] != true {
			t.Fatalf("MERN typing reached Parley as %v", tp)
		}
		ms.Emit(`["stop typing","` + chatID + `"]`)
		if tp := ns.Payload("typing", ofChatPayload(chatID)); tp["isTyping"] != false {
			t.Fatalf("MERN stop typing reached Parley as %v", tp)
		}
		ns.Emit(`["typing",{"chatId":"` + chatID + `","isTyping":true}]`)
		// Nothing but, with connection-state recovery on, its offset.
		if args := ms.Event("typing"); len(args) > 1 || (len(args) == 1 && !isString(args[0])) {
			t.Fatalf("typing to the app carries %v, want nothing", args)
		}
		ns.Emit(`["typing",{"chatId":"` + chatID + `","isTyping":false}]`)
		ms.Event("stop typing")

		// A Parley client's attachment-only message reads as its file names.
		f := uploadFile(t, srv, nate.Token, filePart("plan.pdf", "application/pdf", []byte("%PDF-1.4 plan")))
		ack := ns.CallOne("message:send", map[string]any{"chatId": chatID, "attachments": []string{f["id"].(string)}})
		sentMessage(t, ack)
		att := ms.EventWhere("message recieved", nil)[0].(map[string]any)
		if att["content"] != "📎 plan.pdf" {
			t.Fatalf("attachment-only message reached the app as %v", att)
		}

		// A barrier: the next native message comes after everything above.
		sendSock(t, ns, chatID, "barrier", "")
		ms.EventWhere("message recieved", func(args []any) bool { return args[0].(map[string]any)["content"] == "barrier" })
		ms.NoEvent("message recieved", nil) // not its own send, not the relayed one
		ms.NoEvent("message:new", nil)      // no native events for the app
		ns.NoEvent("message:new", func(args []any) bool { return args[0].(map[string]any)["text"] == "hi from MERN" })

		// History, oldest first, the same messages both APIs.
		hist := mernCall(t, "GET", srv.URL+"/api/message/"+chatID, mary.Token, nil).want(t, "all messages", 200)
		var contents []string
		for _, m := range hist.List {
			contents = append(contents, m.(map[string]any)["content"].(string))
		}
		if strings.Join(contents, "|") != "hello from Parley|hi from MERN|📎 plan.pdf|barrier" {
			t.Fatalf("history: %v", contents)
		}
		// In history a message's chat names its users by id, as the app's does.
		if hc := hist.List[0].(map[string]any)["chat"].(map[string]any); hc["_id"] != chatID || !isString(hc["users"].([]any)[0]) {
			t.Fatalf("history's chat: %v", hc)
		}
		chats := mernCall(t, "GET", srv.URL+"/api/chat", nate.Token, nil).want(t, "chats", 200)
		if lm := chats.List[0].(map[string]any)["latestMessage"].(map[string]any); lm["content"] != "barrier" || lm["sender"].(map[string]any)["_id"] != nate.ID {
			t.Fatalf("latestMessage: %v", lm)
		}
		wantNoPassword(t, "chats", chats.Raw)

		// Groups: the caller is groupAdmin; Parley's rules apply.
		carl := mernSignup(t, srv, "Carl")
		dora := mernSignup(t, srv, "Dora")
		mernCall(t, "POST", srv.URL+"/api/chat/group", mary.Token, map[string]any{"name": "Too small", "users": mustJSON(t, []string{nate.ID})}).want(t, "group of one other", 400)
		g := mernCall(t, "POST", srv.URL+"/api/chat/group", mary.Token, map[string]any{"name": "Crew", "users": mustJSON(t, []string{nate.ID, carl.ID})}).want(t, "create group", 200)
		gid := g.Obj["_id"].(string)
		if g.Obj["isGroupChat"] != true || g.Obj["chatName"] != "Crew" || g.Obj["groupAdmin"].(map[string]any)["_id"] != mary.ID || len(g.Obj["users"].([]any)) != 3 {
			t.Fatalf("group: %s", g.Raw)
		}
		mernCall(t, "PUT", srv.URL+"/api/chat/rename", carl.Token, map[string]any{"chatId": gid, "chatName": "Carl's"}).want(t, "member renames", 403)
		mernCall(t, "PUT", srv.URL+"/api/chat/rename", dora.Token, map[string]any{"chatId": gid, "chatName": "Dora's"}).want(t, "stranger renames", 404)
		if r := mernCall(t, "PUT", srv.URL+"/api/chat/rename", mary.Token, map[string]any{"chatId": gid, "chatName": "Crew 2"}).want(t, "rename", 200); r.Obj["chatName"] != "Crew 2" {
			t.Fatalf("rename: %s", r.Raw)
		}
		if r := mernCall(t, "PUT", srv.URL+"/api/chat/groupadd", mary.Token, map[string]any{"chatId": gid, "userId": dora.ID}).want(t, "add", 200); len(r.Obj["users"].([]any)) != 4 {
			t.Fatalf("add: %s", r.Raw)
		}
		mernCall(t, "PUT", srv.URL+"/api/chat/groupremove", carl.Token, map[string]any{"chatId": gid, "userId": dora.ID}).want(t, "member removes another", 403)
		if r := mernCall(t, "PUT", srv.URL+"/api/chat/groupremove", carl.Token, map[string]any{"chatId": gid, "userId": carl.ID}).want(t, "leave", 200); len(r.Obj["users"].([]any)) != 3 {
			t.Fatalf("leave: %s", r.Raw)
		}
		mernCall(t, "PUT", srv.URL+"/api/chat/groupremove", mary.Token, map[string]any{"chatId": "0123456789abcdef01234567", "userId": dora.ID}).want(t, "unknown chat", 404)
		// Parley's API sees the same group, with its owner.
		pg := call(t, "GET", srv.URL+"/api/chats/"+gid, nate.Token, nil)
		if pg.Status != 200 || pg.Body["name"] != "Crew 2" || len(pg.Body["members"].([]any)) != 3 {
			t.Fatalf("Parley's view of the MERN group: %d %s", pg.Status, pg.Raw)
		}
	})
}

func isString(v any) bool { _, ok := v.(string); return ok }

// ofChatPayload matches a typing payload of chatID.
func ofChatPayload(chatID string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["chatId"] == chatID }
}

// waitServerDisconnect waits for the server's namespace DISCONNECT or the
// connection's end.
func waitServerDisconnect(t *testing.T, c *sioraw.Client, what string) {
	t.Helper()
	deadline := time.After(sioraw.Timeout)
	for {
		for _, f := range c.Frames() {
			if f == "41" {
				return
			}
		}
		select {
		case <-c.Closed():
			return
		case <-deadline:
			t.Fatalf("%s: not disconnected; frames %v", what, c.Frames())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestMERNSocketAuth(t *testing.T) {
	cfg := testConfig(t, "sqlite")
	cfg.MERNSetupTimeout = 300 * time.Millisecond
	srv := startServer(t, cfg)
	mary := mernSignup(t, srv, "Mary")

	t.Run("bad token refused at once", func(t *testing.T) {
		c := sioraw.Dial(t, srv.URL, "", nil)
		kind, body := c.Connect(map[string]any{"token": "not-a-token"})
		if kind != "44" || body["message"] != "unauthorized" {
			t.Fatalf("CONNECT with a bad token: %s %v", kind, body)
		}
		h := http.Header{"Cookie": {"token=not-a-token"}}
		c = sioraw.Dial(t, srv.URL, "", h)
		c.Send("40")
		if f := c.Expect("CONNECT answer", func(f string) bool { return strings.HasPrefix(f, "4") }); !strings.HasPrefix(f, "44") {
			t.Fatalf("CONNECT with a bad cookie: %s", f)
		}
	})
	t.Run("setup first", func(t *testing.T) {
		c := sioraw.Dial(t, srv.URL, "", nil)
		c.Send("40")
		c.Expect("CONNECT answer", func(f string) bool { return strings.HasPrefix(f, "40") })
		c.Emit(`["join chat","0123456789abcdef01234567"]`)
		waitServerDisconnect(t, c, "an event before setup")
		c.NoEvent("connected", nil)
	})
	t.Run("setup with a bad token", func(t *testing.T) {
		c := sioraw.Dial(t, srv.URL, "", nil)
		c.Send("40")
		c.Expect("CONNECT answer", func(f string) bool { return strings.HasPrefix(f, "40") })
		c.Emit(`["setup",{"_id":"` + mary.ID + `","token":"forged"}]`)
		waitServerDisconnect(t, c, "setup with a bad token")
		c.NoEvent("connected", nil)
	})
	t.Run("setup timeout", func(t *testing.T) {
		c := sioraw.Dial(t, srv.URL, "", nil)
		c.Send("40")
		c.Expect("CONNECT answer", func(f string) bool { return strings.HasPrefix(f, "40") })
		waitServerDisconnect(t, c, "no setup within MERN_SETUP_TIMEOUT")
	})
	t.Run("cookie", func(t *testing.T) {
		// The app served from WEB_ROOT connects same-origin with the
		// cookie its login set; its setup then binds it as usual.
		h := http.Header{"Cookie": {"token=" + mary.Token}}
		c := sioraw.Dial(t, srv.URL, "", h)
		c.Send("40")
		c.Expect("CONNECT answer", func(f string) bool { return strings.HasPrefix(f, "40") })
		c.Emit(`["setup",{"_id":"` + mary.ID + `","token":"` + mary.Token + `"}]`)
		c.Event("connected")
	})
	t.Run("setup in time", func(t *testing.T) {
		c := mernSock(t, srv, mary)
		// A join of a chat the user is not in is ignored, and the socket
		// stays, bound: it receives what reaches the user.
		c.Emit(`["join chat","0123456789abcdef01234567"]`)
		nate := signup(t, srv, "nate")
		direct := mernCall(t, "POST", srv.URL+"/api/chat", nate.Token, map[string]any{"userId": mary.ID}).want(t, "access chat", 200)
		mernCall(t, "POST", srv.URL+"/api/message", nate.Token, map[string]any{"content": "still there?", "chatId": direct.Obj["_id"]}).want(t, "send", 200)
		c.EventWhere("message recieved", nil)
	})
}

// TestMERNImport runs `parley import mern` on a database filled as the
// app's mongoose models fill it, into each store, twice; then the app's
// users log in with their old passwords and find their chats.
func TestMERNImport(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			cfg := testConfig(t, kind)
			uri, srcDB := testenv.MongoURI(t), testenv.MongoDatabase(t)
			client, err := mongo.Connect(options.Client().ApplyURI(uri))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = client.Database(srcDB).Drop(context.Background())
				_ = client.Disconnect(context.Background())
			})
			f := importertest.Seed(t, client.Database(srcDB))

			env := []string{"DATA_DIR=" + cfg.DataDir, "JWT_SECRET=" + testJWTSecret, "PARLEY_ENV=test"}
			if kind == "mongo" {
				env = append(env, "MONGO_URI="+cfg.MongoURI, "MONGO_DB="+cfg.MongoDB)
			}
			for run := 1; run <= 2; run++ {
				var out, progress bytes.Buffer
				code := importCommand([]string{"mern", "--from", uri, "--db", srcDB}, env, &out, &progress)
				if code != exitRefused { // the fixture holds malformed documents
					t.Fatalf("run %d: exit %d\n%s\n%s", run, code, out.String(), progress.String())
				}
				want := "messages: read 7, imported 5, already present 0, refused 2"
				if run == 2 {
					want = "messages: read 7, imported 0, already present 5, refused 2"
				}
				if !strings.Contains(out.String(), want) || !strings.Contains(progress.String(), "users: 6 read") {
					t.Fatalf("run %d summary:\n%s\nprogress:\n%s", run, out.String(), progress.String())
				}
			}
			if code := importCommand([]string{"mern"}, env, io.Discard, io.Discard); code != exitUsage {
				t.Fatalf("without --from: exit %d, want %d", code, exitUsage)
			}

			srv := startServer(t, cfg)
			guest := f.Users[0] // bcryptjs 2.4.3 ($2a$), a 6-character password
			r := mernCall(t, "POST", srv.URL+"/api/user/login", "", map[string]any{"email": guest.Email, "password": guest.Password}).want(t, "old user logs in", 200)
			if r.Obj["_id"] != guest.ID || r.Obj["name"] != guest.Name {
				t.Fatalf("login: %s", r.Raw)
			}
			jane := f.Users[2] // bcryptjs 3 ($2b$), through Parley's API
			if p := call(t, "POST", srv.URL+"/api/auth/login", "", map[string]any{"login": jane.Email, "password": jane.Password}); p.Status != 200 {
				t.Fatalf("Parley login of an imported user: %d %s", p.Status, p.Raw)
			}
			chats := mernCall(t, "GET", srv.URL+"/api/chat", r.Obj["token"].(string), nil).want(t, "chats", 200)
			if len(chats.List) != 2 {
				t.Fatalf("chats: %s", chats.Raw)
			}
			// Most recently active first: the group's last message is newer.
			g := chats.List[0].(map[string]any)
			if g["_id"] != f.Group || g["groupAdmin"].(map[string]any)["_id"] != f.Users[1].ID || g["latestMessage"].(map[string]any)["content"] != "weekend?" {
				t.Fatalf("group: %v", g)
			}
			hist := mernCall(t, "GET", srv.URL+"/api/message/"+f.Direct, r.Obj["token"].(string), nil).want(t, "history", 200)
			var texts []string
			for _, m := range hist.List {
				texts = append(texts, m.(map[string]any)["content"].(string))
			}
			if strings.Join(texts, "|") != strings.Join(f.DirectTexts, "|") {
				t.Fatalf("history %v, want %v", texts, f.DirectTexts)
			}
			// Unread from the imported read marks: guest read up to seq 2 of 3.
			pc := call(t, "GET", srv.URL+"/api/chats/"+f.Direct, r.Obj["token"].(string), nil)
			if pc.Body["unreadCount"] != float64(1) {
				t.Fatalf("unread after import: %s", pc.Raw)
			}
		})
	}
}
