// Package importertest fills a MongoDB database the way the MERN chat app's
// mongoose models do (ObjectIds, createdAt/updatedAt Dates, __v, bcryptjs
// password hashes from testdata/users.json), for the importer's tests.
package importertest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// User is one fixture user: its plain password and bcryptjs hash.
type User struct {
	ID       string
	Name     string `json:"name"`
	Email    string `json:"email"`
	Password string `json:"password"`
	Hash     string `json:"hash"`
}

// Fixture is what Seed wrote.
type Fixture struct {
	Users []User // guest, piyush, jane, john
	// Direct is guest↔piyush; Group is "Friends" (admin piyush, with guest
	// and jane); Orphan is a direct chat with a user that is refused.
	Direct, Group string
	// DirectTexts and GroupTexts are the valid messages in creation order.
	DirectTexts, GroupTexts []string
	// Refused names the malformed documents: collection -> ids.
	Refused map[string][]string
}

func loadUsers(t testing.TB) []User {
	_, file, _, _ := runtime.Caller(0)
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "testdata", "users.json"))
	if err != nil {
		t.Fatal(err)
	}
	var users []User
	if err := json.Unmarshal(raw, &users); err != nil {
		t.Fatal(err)
	}
	return users
}

// Seed writes the fixture into db.
func Seed(t testing.TB, db *mongo.Database) Fixture {
	t.Helper()
	users := loadUsers(t)
	base := time.Date(2023, 5, 1, 10, 0, 0, 0, time.UTC)
	oids := make([]bson.ObjectID, len(users))
	var docs []any
	for i := range users {
		oids[i] = bson.NewObjectIDFromTimestamp(base.Add(time.Duration(i) * time.Minute))
		users[i].ID = oids[i].Hex()
		// The app's user schema misspells `timestamps`: no createdAt.
		docs = append(docs, bson.D{
			{Key: "_id", Value: oids[i]}, {Key: "name", Value: users[i].Name}, {Key: "email", Value: users[i].Email},
			{Key: "password", Value: users[i].Hash},
			{Key: "pic", Value: Pic(i)},
			{Key: "isAdmin", Value: false}, {Key: "__v", Value: int32(0)},
		})
	}
	badEmail, plainPassword := bson.NewObjectID(), bson.NewObjectID()
	docs = append(docs,
		bson.D{{Key: "_id", Value: badEmail}, {Key: "name", Value: "Bad"}, {Key: "email", Value: int32(42)}, {Key: "password", Value: users[0].Hash}, {Key: "__v", Value: int32(0)}},
		bson.D{{Key: "_id", Value: plainPassword}, {Key: "name", Value: "Plain"}, {Key: "email", Value: "plain@example.com"}, {Key: "password", Value: "hunter2"}, {Key: "__v", Value: int32(0)}},
	)
	insert(t, db, "users", docs)

	guest, piyush, jane := oids[0], oids[1], oids[2]
	direct, group, orphan, badChat := bson.NewObjectID(), bson.NewObjectID(), bson.NewObjectID(), bson.NewObjectID()
	ts := func(min int) bson.DateTime {
		return bson.NewDateTimeFromTime(base.Add(time.Hour + time.Duration(min)*time.Minute))
	}
	insert(t, db, "chats", []any{
		bson.D{{Key: "_id", Value: direct}, {Key: "chatName", Value: "sender"}, {Key: "isGroupChat", Value: false},
			{Key: "users", Value: bson.A{guest, piyush}}, {Key: "createdAt", Value: ts(0)}, {Key: "updatedAt", Value: ts(30)}, {Key: "__v", Value: int32(0)}},
		bson.D{{Key: "_id", Value: group}, {Key: "chatName", Value: "Friends"}, {Key: "isGroupChat", Value: true},
			{Key: "users", Value: bson.A{guest, piyush, jane}}, {Key: "groupAdmin", Value: piyush},
			{Key: "createdAt", Value: ts(1)}, {Key: "updatedAt", Value: ts(40)}, {Key: "__v", Value: int32(0)}},
		bson.D{{Key: "_id", Value: orphan}, {Key: "chatName", Value: "sender"}, {Key: "isGroupChat", Value: false},
			{Key: "users", Value: bson.A{guest, plainPassword}}, {Key: "createdAt", Value: ts(2)}, {Key: "__v", Value: int32(0)}},
		bson.D{{Key: "_id", Value: badChat}, {Key: "chatName", Value: "Broken"}, {Key: "isGroupChat", Value: true},
			{Key: "users", Value: "not an array"}, {Key: "createdAt", Value: ts(3)}, {Key: "__v", Value: int32(0)}},
	})

	f := Fixture{Users: users, Direct: direct.Hex(), Group: group.Hex(), Refused: map[string][]string{
		"users": {badEmail.Hex(), plainPassword.Hex()}, "chats": {orphan.Hex(), badChat.Hex()},
	}}
	msg := func(chat, sender bson.ObjectID, content any, min int, readBy ...bson.ObjectID) (bson.ObjectID, bson.D) {
		// ObjectIds out of time order: seq must follow createdAt, not _id.
		id := bson.NewObjectIDFromTimestamp(base.Add(time.Duration(100-min) * time.Minute))
		d := bson.D{{Key: "_id", Value: id}, {Key: "sender", Value: sender}}
		if content != nil {
			d = append(d, bson.E{Key: "content", Value: content})
		}
		rb := bson.A{}
		for _, r := range readBy {
			rb = append(rb, r)
		}
		d = append(d, bson.E{Key: "chat", Value: chat}, bson.E{Key: "readBy", Value: rb},
			bson.E{Key: "createdAt", Value: ts(min)}, bson.E{Key: "updatedAt", Value: ts(min)}, bson.E{Key: "__v", Value: int32(0)})
		return id, d
	}
	var mdocs []any
	add := func(id bson.ObjectID, d bson.D) { mdocs = append(mdocs, d) }
	// Inserted newest first, so that only sorting by createdAt numbers them right.
	add(msg(direct, piyush, "see you", 30))
	add(msg(direct, guest, "hello piyush", 10, piyush))
	add(msg(direct, piyush, "hi guest", 20, guest))
	noContent, d := msg(direct, guest, nil, 25)
	add(noContent, d)
	add(msg(group, jane, "weekend?", 40))
	add(msg(group, piyush, "welcome all", 35, guest, jane))
	add(msg(orphan, guest, "lost", 5))
	insert(t, db, "messages", mdocs)
	f.DirectTexts = []string{"hello piyush", "hi guest", "see you"}
	f.GroupTexts = []string{"welcome all", "weekend?"}
	f.Refused["messages"] = []string{noContent.Hex()}
	return f
}

func insert(t testing.TB, db *mongo.Database, coll string, docs []any) {
	t.Helper()
	if _, err := db.Collection(coll).InsertMany(t.Context(), docs); err != nil {
		t.Fatalf("seed %s: %v", coll, err)
	}
}

// Pic is the picture URL of fixture user i, as the app stored it.
func Pic(i int) string {
	if i == 1 {
		return "http://res.cloudinary.com/piyushproj/image/upload/v1/piyush.jpg"
	}
	return "https://icon-library.com/images/anonymous-avatar-icon/anonymous-avatar-icon-25.jpg"
}
