package importer_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/parley-chat/parley/auth"
	"github.com/parley-chat/parley/internal/testenv"
	"github.com/parley-chat/parley/mern/importer"
	"github.com/parley-chat/parley/mern/importer/importertest"
	"github.com/parley-chat/parley/store"
	mongostore "github.com/parley-chat/parley/store/mongo"
	"github.com/parley-chat/parley/store/sqlite"
)

// source returns a fresh database on the test MongoDB-wire server (FerretDB).
func source(t *testing.T) *mongo.Database {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(testenv.MongoURI(t)))
	if err != nil {
		t.Fatal(err)
	}
	db := client.Database(testenv.MongoDatabase(t))
	t.Cleanup(func() {
		_ = db.Drop(context.Background())
		_ = client.Disconnect(context.Background())
	})
	return db
}

func targets(t *testing.T) map[string]func(t *testing.T) store.Store {
	return map[string]func(t *testing.T) store.Store{
		"sqlite": func(t *testing.T) store.Store {
			st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "parley.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
		"mongo": func(t *testing.T) store.Store {
			st, err := mongostore.Open(t.Context(), testenv.MongoURI(t), testenv.MongoDatabase(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = st.Drop(context.Background())
				_ = st.Close()
			})
			return st
		},
	}
}

func TestImport(t *testing.T) {
	for name, open := range targets(t) {
		t.Run(name, func(t *testing.T) {
			src := source(t)
			f := importertest.Seed(t, src)
			dst := open(t)
			var progress strings.Builder
			first, err := importer.New(src, dst, &progress).Run(t.Context())
			if err != nil {
				t.Fatalf("import: %v", err)
			}
			if !strings.Contains(progress.String(), "users: 6 read") || !strings.Contains(progress.String(), "messages: 2 of 2 chats") {
				t.Errorf("progress:\n%s", progress.String())
			}
			want := importer.Summary{
				Users:     importer.Counts{Read: 6, Imported: 4, Refused: 2},
				Chats:     importer.Counts{Read: 4, Imported: 2, Refused: 2},
				Messages:  importer.Counts{Read: 7, Imported: 5, Refused: 2},
				ReadMarks: 4,
			}
			checkCounts(t, "first run", first, want)
			// Every malformed document is named, with why.
			for coll, ids := range f.Refused {
				for _, id := range ids {
					if !slices.ContainsFunc(first.Problems, func(p importer.Problem) bool { return p.Collection == coll && p.ID == id && p.Reason != "" }) {
						t.Errorf("%s %s not reported; problems %v", coll, id, first.Problems)
					}
				}
			}
			if !slices.ContainsFunc(first.Problems, func(p importer.Problem) bool {
				return strings.Contains(p.Reason, "1 messages belong to no imported chat")
			}) {
				t.Errorf("the orphan chat's message is not reported: %v", first.Problems)
			}
			var out strings.Builder
			first.Print(&out)
			if !strings.Contains(out.String(), "messages: read 7, imported 5, already present 0, refused 2") {
				t.Errorf("summary:\n%s", out.String())
			}

			checkImported(t, dst, f)

			// Again: nothing doubles, nothing new.
			second, err := importer.New(src, dst, nil).Run(t.Context())
			if err != nil {
				t.Fatalf("second import: %v", err)
			}
			checkCounts(t, "second run", second, importer.Summary{
				Users:    importer.Counts{Read: 6, Present: 4, Refused: 2},
				Chats:    importer.Counts{Read: 4, Present: 2, Refused: 2},
				Messages: importer.Counts{Read: 7, Present: 5, Refused: 2},
			})
			checkImported(t, dst, f)
		})
	}
}

func checkCounts(t *testing.T, what string, got *importer.Summary, want importer.Summary) {
	t.Helper()
	if got.Users != want.Users || got.Chats != want.Chats || got.Messages != want.Messages || got.ReadMarks != want.ReadMarks {
		t.Fatalf("%s: users %+v chats %+v messages %+v marks %d\nwant users %+v chats %+v messages %+v marks %d\nproblems %v",
			what, got.Users, got.Chats, got.Messages, got.ReadMarks, want.Users, want.Chats, want.Messages, want.ReadMarks, got.Problems)
	}
}

func checkImported(t *testing.T, dst store.Store, f importertest.Fixture) {
	t.Helper()
	ctx := t.Context()
	pw, err := auth.NewPasswords(4)
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range f.Users {
		got, err := dst.UserByLogin(ctx, strings.ToLower(u.Email))
		if err != nil {
			t.Fatalf("user %s: %v", u.Email, err)
		}
		if got.ID != u.ID || got.DisplayName != u.Name || got.PictureURL != importertest.Pic(i) || !pw.Check(got.PasswordHash, u.Password) {
			t.Fatalf("user %s imported as %+v; its old password must still check", u.Email, got)
		}
	}
	guest, piyush, jane := f.Users[0].ID, f.Users[1].ID, f.Users[2].ID
	direct, err := dst.ChatByID(ctx, f.Direct)
	if err != nil {
		t.Fatal(err)
	}
	if direct.Type != store.ChatDirect || len(direct.Members) != 2 {
		t.Fatalf("direct chat: %+v", direct)
	}
	group, err := dst.ChatByID(ctx, f.Group)
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]string{}
	reads := map[string]int64{}
	for _, m := range group.Members {
		roles[m.UserID], reads[m.UserID] = m.Role, m.ReadSeq
	}
	if group.Name != "Friends" || roles[piyush] != store.RoleOwner || roles[guest] != store.RoleMember || roles[jane] != store.RoleMember {
		t.Fatalf("group: %+v", group)
	}
	if reads[guest] != 1 || reads[jane] != 1 || reads[piyush] != 0 {
		t.Fatalf("group read marks: %v", reads)
	}
	for _, m := range direct.Members {
		reads[m.UserID] = m.ReadSeq
	}
	if reads[guest] != 2 || reads[piyush] != 1 {
		t.Fatalf("direct read marks: %v", reads)
	}
	for chatID, want := range map[string][]string{f.Direct: f.DirectTexts, f.Group: f.GroupTexts} {
		msgs, more, err := dst.History(ctx, chatID, 0, 0, 100)
		if err != nil || more {
			t.Fatalf("history %s: %v %v", chatID, more, err)
		}
		var texts []string
		for i, m := range msgs {
			if m.Seq != int64(i+1) {
				t.Fatalf("chat %s: seq %d at %d", chatID, m.Seq, i)
			}
			texts = append(texts, m.Text)
		}
		if !slices.Equal(texts, want) {
			t.Fatalf("chat %s: %v, want %v (by creation time)", chatID, texts, want)
		}
		last, err := dst.LastMessage(ctx, chatID)
		if err != nil || last.Text != want[len(want)-1] {
			t.Fatalf("latest message of %s: %v %v", chatID, last, err)
		}
	}
}

// TestImportConflicts: what the target already holds decides, and the
// import says why it refused: an email a Parley account already uses, and
// a second direct chat of the same two users (the app did not prevent
// them). The rest goes in.
func TestImportConflicts(t *testing.T) {
	for name, open := range targets(t) {
		t.Run(name, func(t *testing.T) {
			src := source(t)
			f := importertest.Seed(t, src)
			dst := open(t)
			john := f.Users[3]
			taken := &store.User{ID: store.NewID(), Username: "john_parley", Email: strings.ToLower(john.Email), DisplayName: "John of Parley", PasswordHash: "$2a$04$x", CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
			if err := dst.CreateUser(t.Context(), taken); err != nil {
				t.Fatal(err)
			}
			guest, piyush := mustOID(t, f.Users[0].ID), mustOID(t, f.Users[1].ID)
			dup := bson.NewObjectID()
			if _, err := src.Collection("chats").InsertOne(t.Context(), bson.D{
				{Key: "_id", Value: dup}, {Key: "chatName", Value: "sender"}, {Key: "isGroupChat", Value: false},
				{Key: "users", Value: bson.A{piyush, guest}}, {Key: "createdAt", Value: bson.NewDateTimeFromTime(time.Now())}, {Key: "__v", Value: int32(0)},
			}); err != nil {
				t.Fatal(err)
			}
			sum, err := importer.New(src, dst, nil).Run(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			reason := func(coll, id string) string {
				for _, p := range sum.Problems {
					if p.Collection == coll && p.ID == id {
						return p.Reason
					}
				}
				return ""
			}
			if r := reason("users", john.ID); !strings.Contains(r, "already belongs to another Parley account") {
				t.Errorf("john: %q; problems %v", r, sum.Problems)
			}
			if r := reason("chats", dup.Hex()); !strings.Contains(r, "second direct chat") {
				t.Errorf("duplicate direct chat: %q; problems %v", r, sum.Problems)
			}
			if sum.Users.Imported != 3 || sum.Chats.Imported != 2 || sum.Messages.Imported != 5 {
				t.Errorf("imported users %d chats %d messages %d, want 3 2 5", sum.Users.Imported, sum.Chats.Imported, sum.Messages.Imported)
			}
			if u, err := dst.UserByLogin(t.Context(), taken.Email); err != nil || u.ID != taken.ID {
				t.Errorf("the Parley account with that email: %v %v", u, err)
			}
		})
	}
}

func mustOID(t *testing.T, hex string) bson.ObjectID {
	t.Helper()
	oid, err := bson.ObjectIDFromHex(hex)
	if err != nil {
		t.Fatal(err)
	}
	return oid
}
