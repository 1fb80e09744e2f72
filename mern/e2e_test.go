package mern_test

// The MERN API beside Parley's, on the whole stack: both APIs on one set of
// users, chats and messages, and the app's sockets beside native ones. The
// app's own flows, replayed with its pinned socket.io-client and axios, are
// in scripts/mern; the socket admission rules and the import, which need
// the process's configuration, in the root package (mern_test.go).

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/parley-chat/parley/internal/testenv/sioraw"
	"github.com/parley-chat/parley/internal/testenv/stack"
	"github.com/parley-chat/parley/mern/merntest"
)

// connectSock connects a Parley socket as token.
func connectSock(t *testing.T, srv *stack.Server, token string) *sioraw.Client {
	t.Helper()
	return stack.ConnectSock(t, srv.URL, token)
}

// sendSock sends text over message:send and returns the stored message.
func sendSock(t *testing.T, c *sioraw.Client, chatID, text string) map[string]any {
	t.Helper()
	return sentMessage(t, c.CallOne("message:send", map[string]any{"chatId": chatID, "text": text}))
}

func sentMessage(t *testing.T, ack map[string]any) map[string]any {
	t.Helper()
	m, ok := ack["message"].(map[string]any)
	if ack["ok"] != true || !ok {
		t.Fatalf("message:send answered %v", ack)
	}
	return m
}

// newDirectChat returns the direct chat of a and b through Parley's API.
func newDirectChat(t *testing.T, srv *stack.Server, a, b stack.Account) string {
	t.Helper()
	r := stack.Call(t, "POST", srv.URL+"/api/chats", a.Token, map[string]any{"type": "direct", "userId": b.ID})
	if r.Status != http.StatusCreated && r.Status != http.StatusOK {
		t.Fatalf("create direct chat: %d %s", r.Status, r.Raw)
	}
	return r.Body["id"].(string)
}

// uploadFile uploads one small file through Parley's API.
func uploadFile(t *testing.T, srv *stack.Server, token, name string, data []byte) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("file", name)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write(data)
	_ = mw.Close()
	req, err := http.NewRequest("POST", srv.URL+"/api/files", &buf)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	r := stack.Do(t, req)
	if r.Status != http.StatusCreated {
		t.Fatalf("upload: %d %s", r.Status, r.Raw)
	}
	return r.Body
}

// msgIn matches a message:new payload of chatID with the given text.
func msgIn(chatID, text string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["chatId"] == chatID && m["text"] == text }
}

// ofChat matches a typing payload of chatID.
func ofChat(chatID string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["chatId"] == chatID }
}

func isString(v any) bool { _, ok := v.(string); return ok }

func TestCrossAPI(t *testing.T) {
	stack.ForEachStore(t, func(t *testing.T, srv *stack.Server) {
		// A user of each API, each usable through the other.
		mary := merntest.Signup(t, srv.URL, "Mary Mern")
		nate := stack.Signup(t, srv.URL, "nate")
		login := stack.Call(t, "POST", srv.URL+"/api/auth/login", "", map[string]any{"login": mary.Email, "password": mary.Password})
		if login.Status != 200 || login.Body["user"].(map[string]any)["displayName"] != "Mary Mern" {
			t.Fatalf("MERN user logs in through Parley's API: %d %s", login.Status, login.Raw)
		}
		if u := login.Body["user"].(map[string]any)["username"].(string); !strings.HasPrefix(u, "mary.mern") {
			t.Fatalf("generated username %q, want it made from the name", u)
		}
		nateM := merntest.Call(t, "POST", srv.URL+"/api/user/login", "", map[string]any{"email": nate.Email, "password": nate.Password}).Want(t, "Parley user logs in through the MERN API", 200)
		if nateM.Obj["_id"] != nate.ID || nateM.Obj["name"] != nate.Username || nateM.Obj["token"] == "" {
			t.Fatalf("MERN login of a Parley user: %s", nateM.Raw)
		}
		merntest.WantNoPassword(t, "MERN login", nateM.Raw)
		merntest.Call(t, "POST", srv.URL+"/api/user/login", "", map[string]any{"email": nate.Email, "password": "wrong password"}).Want(t, "wrong password", 401)
		merntest.Call(t, "POST", srv.URL+"/api/user", "", map[string]any{"name": "Again", "email": mary.Email, "password": "another secret"}).Want(t, "email taken", 400)
		merntest.Call(t, "POST", srv.URL+"/api/user", "", map[string]any{"name": "No Password", "email": "np@example.com"}).Want(t, "missing field", 400)
		merntest.Call(t, "POST", srv.URL+"/api/user", "", map[string]any{"name": "Short", "email": "short@example.com", "password": "123456"}).Want(t, "Parley's password rule", 400)
		merntest.Call(t, "POST", srv.URL+"/api/user", "", map[string]any{"name": "Js", "email": "js@example.com", "password": "long enough!", "pic": "javascript:alert(1)"}).Want(t, "a pic that is no http(s) URL", 400)
		pic := "https://res.cloudinary.com/demo/image/upload/sample.jpg"
		withPic := merntest.Call(t, "POST", srv.URL+"/api/user", "", map[string]any{"name": "Pat Pic", "email": "pat." + stack.RandomHex(3) + "@example.com", "password": "long enough!", "pic": pic}).Want(t, "signup with pic", 201)
		if withPic.Obj["pic"] != pic {
			t.Fatalf("pic not kept: %s", withPic.Raw)
		}
		merntest.Call(t, "GET", srv.URL+"/api/chat", "", nil).Want(t, "no token", 401)
		merntest.Call(t, "GET", srv.URL+"/api/chat", "not-a-token", nil).Want(t, "bad token", 401)

		// Search by a piece of the email, any case; never the caller.
		found := merntest.Call(t, "GET", srv.URL+"/api/user?search="+strings.ToUpper(nate.Email[:6]), mary.Token, nil).Want(t, "search", 200)
		if len(found.List) != 1 || found.List[0].(map[string]any)["_id"] != nate.ID {
			t.Fatalf("search: %s", found.Raw)
		}
		merntest.WantNoPassword(t, "search", found.Raw)
		if self := merntest.Call(t, "GET", srv.URL+"/api/user?search=mary", mary.Token, nil).Want(t, "search self", 200); len(self.List) != 0 {
			t.Fatalf("search lists the caller: %s", self.Raw)
		}

		// The direct chat, from the MERN side; Parley's API sees the same one.
		direct := merntest.Call(t, "POST", srv.URL+"/api/chat", mary.Token, map[string]any{"userId": nate.ID}).Want(t, "access chat", 200)
		chatID := direct.Obj["_id"].(string)
		if direct.Obj["isGroupChat"] != false || direct.Obj["chatName"] != "sender" || len(direct.Obj["users"].([]any)) != 2 {
			t.Fatalf("direct chat: %s", direct.Raw)
		}
		if again := newDirectChat(t, srv, nate, stack.Account{ID: mary.ID}); again != chatID {
			t.Fatalf("Parley's API found direct chat %s, MERN made %s", again, chatID)
		}

		ms := merntest.Sock(t, srv.URL, mary)
		ns := connectSock(t, srv, nate.Token)

		// Native → MERN: the full message shape, as `message recieved`.
		sent := sendSock(t, ns, chatID, "hello from Parley")
		got := ms.EventWhere("message recieved", nil)[0].(map[string]any)
		chat, _ := got["chat"].(map[string]any)
		sender, _ := got["sender"].(map[string]any)
		if got["_id"] != sent["id"] || got["content"] != "hello from Parley" || sender["_id"] != nate.ID || sender["name"] != nate.Username ||
			chat["_id"] != chatID || len(chat["users"].([]any)) != 2 || got["createdAt"] == nil {
			t.Fatalf("message recieved: %v", got)
		}

		// MERN → native: POST /api/message with the whole chat object as chatId.
		posted := merntest.Call(t, "POST", srv.URL+"/api/message", mary.Token, map[string]any{"content": "hi from MERN", "chatId": direct.Obj}).Want(t, "send", 200)
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
		tp := ns.Payload("typing", ofChat(chatID))
		if tp["userId"] != mary.ID || tp["isTyping"] != true {
			t.Fatalf("MERN typing reached Parley as %v", tp)
		}
		ms.Emit(`["stop typing","` + chatID + `"]`)
		if tp := ns.Payload("typing", ofChat(chatID)); tp["isTyping"] != false {
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
		f := uploadFile(t, srv, nate.Token, "plan.pdf", []byte("%PDF-1.4 plan"))
		ack := ns.CallOne("message:send", map[string]any{"chatId": chatID, "attachments": []string{f["id"].(string)}})
		sentMessage(t, ack)
		att := ms.EventWhere("message recieved", nil)[0].(map[string]any)
		if att["content"] != "📎 plan.pdf" {
			t.Fatalf("attachment-only message reached the app as %v", att)
		}

		// A barrier: the next native message comes after everything above.
		sendSock(t, ns, chatID, "barrier")
		ms.EventWhere("message recieved", func(args []any) bool { return args[0].(map[string]any)["content"] == "barrier" })
		ms.NoEvent("message recieved", nil) // not its own send, not the relayed one
		ms.NoEvent("message:new", nil)      // no native events for the app
		ns.NoEvent("message:new", func(args []any) bool { return args[0].(map[string]any)["text"] == "hi from MERN" })

		// History, oldest first, the same messages both APIs.
		hist := merntest.Call(t, "GET", srv.URL+"/api/message/"+chatID, mary.Token, nil).Want(t, "all messages", 200)
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
		chats := merntest.Call(t, "GET", srv.URL+"/api/chat", nate.Token, nil).Want(t, "chats", 200)
		if lm := chats.List[0].(map[string]any)["latestMessage"].(map[string]any); lm["content"] != "barrier" || lm["sender"].(map[string]any)["_id"] != nate.ID {
			t.Fatalf("latestMessage: %v", lm)
		}
		merntest.WantNoPassword(t, "chats", chats.Raw)

		// Groups: the caller is groupAdmin; Parley's rules apply.
		carl := merntest.Signup(t, srv.URL, "Carl")
		dora := merntest.Signup(t, srv.URL, "Dora")
		merntest.Call(t, "POST", srv.URL+"/api/chat/group", mary.Token, map[string]any{"name": "Too small", "users": merntest.MustJSON(t, []string{nate.ID})}).Want(t, "group of one other", 400)
		g := merntest.Call(t, "POST", srv.URL+"/api/chat/group", mary.Token, map[string]any{"name": "Crew", "users": merntest.MustJSON(t, []string{nate.ID, carl.ID})}).Want(t, "create group", 200)
		gid := g.Obj["_id"].(string)
		if g.Obj["isGroupChat"] != true || g.Obj["chatName"] != "Crew" || g.Obj["groupAdmin"].(map[string]any)["_id"] != mary.ID || len(g.Obj["users"].([]any)) != 3 {
			t.Fatalf("group: %s", g.Raw)
		}
		merntest.Call(t, "PUT", srv.URL+"/api/chat/rename", carl.Token, map[string]any{"chatId": gid, "chatName": "Carl's"}).Want(t, "member renames", 403)
		merntest.Call(t, "PUT", srv.URL+"/api/chat/rename", dora.Token, map[string]any{"chatId": gid, "chatName": "Dora's"}).Want(t, "stranger renames", 404)
		if r := merntest.Call(t, "PUT", srv.URL+"/api/chat/rename", mary.Token, map[string]any{"chatId": gid, "chatName": "Crew 2"}).Want(t, "rename", 200); r.Obj["chatName"] != "Crew 2" {
			t.Fatalf("rename: %s", r.Raw)
		}
		if r := merntest.Call(t, "PUT", srv.URL+"/api/chat/groupadd", mary.Token, map[string]any{"chatId": gid, "userId": dora.ID}).Want(t, "add", 200); len(r.Obj["users"].([]any)) != 4 {
			t.Fatalf("add: %s", r.Raw)
		}
		merntest.Call(t, "PUT", srv.URL+"/api/chat/groupremove", carl.Token, map[string]any{"chatId": gid, "userId": dora.ID}).Want(t, "member removes another", 403)
		if r := merntest.Call(t, "PUT", srv.URL+"/api/chat/groupremove", carl.Token, map[string]any{"chatId": gid, "userId": carl.ID}).Want(t, "leave", 200); len(r.Obj["users"].([]any)) != 3 {
			t.Fatalf("leave: %s", r.Raw)
		}
		merntest.Call(t, "PUT", srv.URL+"/api/chat/groupremove", mary.Token, map[string]any{"chatId": "0123456789abcdef01234567", "userId": dora.ID}).Want(t, "unknown chat", 404)
		// Parley's API sees the same group, with its owner.
		pg := stack.Call(t, "GET", srv.URL+"/api/chats/"+gid, nate.Token, nil)
		if pg.Status != 200 || pg.Body["name"] != "Crew 2" || len(pg.Body["members"].([]any)) != 3 {
			t.Fatalf("Parley's view of the MERN group: %d %s", pg.Status, pg.Raw)
		}
	})
}

// TestAppSessionCookie: the app served from WEB_ROOT reconnects after a
// drop with only its cookie and never sends setup again; a session the
// MERN API started is the app's on every connect. A cookie from Parley's
// own login stays a Parley socket.
func TestAppSessionCookie(t *testing.T) {
	srv := stack.Start(t, "sqlite")
	mary := merntest.Signup(t, srv.URL, "Mary")
	nate := stack.Signup(t, srv.URL, "nate")
	direct := merntest.Call(t, "POST", srv.URL+"/api/chat", mary.Token, map[string]any{"userId": nate.ID}).Want(t, "access chat", 200)
	chatID := direct.Obj["_id"].(string)

	app := merntest.Connect(t, srv.URL, http.Header{"Cookie": {"token=" + mary.Token}}) // no setup
	parley := merntest.Connect(t, srv.URL, http.Header{"Cookie": {"token=" + nate.Token}})
	ns := connectSock(t, srv, nate.Token)

	sendSock(t, ns, chatID, "after your reconnect")
	if got := app.EventWhere("message recieved", nil)[0].(map[string]any); got["content"] != "after your reconnect" {
		t.Fatalf("the app's socket got %v", got)
	}
	merntest.Call(t, "POST", srv.URL+"/api/message", mary.Token, map[string]any{"content": "seen?", "chatId": chatID}).Want(t, "send", 200)
	parley.Payload("message:new", msgIn(chatID, "seen?"))
	// Typing from Parley reaches it once it joined the chat; the join runs
	// on the lane chat:history's ack comes from, so that ack is a barrier.
	app.Emit(`["join chat","` + chatID + `"]`)
	app.CallOne("chat:history", map[string]any{"chatId": chatID, "limit": 1})
	ns.Emit(`["typing",{"chatId":"` + chatID + `","isTyping":true}]`)
	app.Event("typing")
	app.NoEvent("message:new", nil)
}

// TestTwoNodes: the app's sockets on one node hear what is sent on another
// (the MERN rooms go through the cluster's adapter like Parley's).
func TestTwoNodes(t *testing.T) {
	nodes, _ := stack.StartCluster(t, 2)
	mary := merntest.Signup(t, nodes[0].URL, "Mary")
	nate := stack.Signup(t, nodes[0].URL, "nate")
	direct := merntest.Call(t, "POST", nodes[0].URL+"/api/chat", mary.Token, map[string]any{"userId": nate.ID}).Want(t, "access chat", 200)
	chatID := direct.Obj["_id"].(string)

	ms := merntest.Sock(t, nodes[1].URL, mary)
	ms.Emit(`["join chat","` + chatID + `"]`)
	ms.CallOne("chat:history", map[string]any{"chatId": chatID, "limit": 1}) // the join is done
	ns := connectSock(t, nodes[0], nate.Token)

	sendSock(t, ns, chatID, "across nodes")
	if got := ms.EventWhere("message recieved", nil)[0].(map[string]any); got["content"] != "across nodes" {
		t.Fatalf("message recieved on node 1: %v", got)
	}
	ns.Emit(`["typing",{"chatId":"` + chatID + `","isTyping":true}]`)
	ms.Event("typing")
	merntest.Call(t, "POST", nodes[1].URL+"/api/message", mary.Token, map[string]any{"content": "and back", "chatId": chatID}).Want(t, "send on node 1", 200)
	ns.Payload("message:new", msgIn(chatID, "and back"))
}
