package main

// The MERN dialect's socket admission and `parley import mern`, which need
// the process's configuration (MERN_SETUP_TIMEOUT, the store the import
// writes). The MERN API's behaviour is tested beside it, in mern/.

import (
	"bytes"
	"context"
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
	"github.com/parley-chat/parley/mern/merntest"
)

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
	mary := merntest.Signup(t, srv.URL, "Mary")

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
		c := merntest.Sock(t, srv.URL, mary)
		// A join of a chat the user is not in is ignored, and the socket
		// stays, bound: it receives what reaches the user.
		c.Emit(`["join chat","0123456789abcdef01234567"]`)
		nate := signup(t, srv, "nate")
		direct := merntest.Call(t, "POST", srv.URL+"/api/chat", nate.Token, map[string]any{"userId": mary.ID}).Want(t, "access chat", 200)
		merntest.Call(t, "POST", srv.URL+"/api/message", nate.Token, map[string]any{"content": "still there?", "chatId": direct.Obj["_id"]}).Want(t, "send", 200)
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
				code := importCommand(t.TempDir(), []string{"mern", "--from", uri, "--db", srcDB}, env, &out, &progress)
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
			if code := importCommand(t.TempDir(), []string{"mern"}, env, io.Discard, io.Discard); code != exitUsage {
				t.Fatalf("without --from: exit %d, want %d", code, exitUsage)
			}

			srv := startServer(t, cfg)
			guest := f.Users[0] // bcryptjs 2.4.3 ($2a$), a 6-character password
			r := merntest.Call(t, "POST", srv.URL+"/api/user/login", "", map[string]any{"email": guest.Email, "password": guest.Password}).Want(t, "old user logs in", 200)
			if r.Obj["_id"] != guest.ID || r.Obj["name"] != guest.Name {
				t.Fatalf("login: %s", r.Raw)
			}
			jane := f.Users[2] // bcryptjs 3 ($2b$), through Parley's API
			if p := call(t, "POST", srv.URL+"/api/auth/login", "", map[string]any{"login": jane.Email, "password": jane.Password}); p.Status != 200 {
				t.Fatalf("Parley login of an imported user: %d %s", p.Status, p.Raw)
			}
			chats := merntest.Call(t, "GET", srv.URL+"/api/chat", r.Obj["token"].(string), nil).Want(t, "chats", 200)
			if len(chats.List) != 2 {
				t.Fatalf("chats: %s", chats.Raw)
			}
			// Most recently active first: the group's last message is newer.
			g := chats.List[0].(map[string]any)
			if g["_id"] != f.Group || g["groupAdmin"].(map[string]any)["_id"] != f.Users[1].ID || g["latestMessage"].(map[string]any)["content"] != "weekend?" {
				t.Fatalf("group: %v", g)
			}
			hist := merntest.Call(t, "GET", srv.URL+"/api/message/"+f.Direct, r.Obj["token"].(string), nil).Want(t, "history", 200)
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
