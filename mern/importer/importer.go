// Package importer moves a MERN chat app's MongoDB database (the collections
// mongoose writes for piyush-eon/mern-chat-app: users, chats, messages) into
// either Parley store. Ids are kept, so the app's frontend finds its chats
// and users where they were; passwords keep their bcryptjs hashes ($2a$,
// $2b$), which Parley's bcrypt checks, so users log in with their old
// passwords. Each chat's messages are numbered 1, 2, 3 … by creation time,
// a group's groupAdmin becomes its owner, readBy becomes read marks, and the
// app's latestMessage is not copied: Parley derives it from the messages.
//
// Running it again changes nothing that is already there: every record is
// written under its original id, and the store's unique indexes (id, the
// direct chat key, the chat's seq) refuse a second copy. A malformed
// document is reported with its collection, id and reason, and the rest is
// imported.
package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/parley-chat/parley/auth"
	"github.com/parley-chat/parley/mern"
	"github.com/parley-chat/parley/store"
)

// Target is the part of a Parley store the import writes to.
type Target interface {
	UserByID(ctx context.Context, id string) (*store.User, error)
	UsersByIDs(ctx context.Context, ids []string) ([]store.User, error)
	CreateUser(ctx context.Context, u *store.User) error
	ChatByID(ctx context.Context, id string) (*store.Chat, error)
	CreateChat(ctx context.Context, c *store.Chat) error
	InsertMessages(ctx context.Context, msgs []*store.Message) (int, error)
	History(ctx context.Context, chatID string, before, after int64, limit int) ([]store.Message, bool, error)
	SetReadSeq(ctx context.Context, chatID, userID string, seq int64) (bool, error)
}

// Limits the imported records must meet, as Parley's API would.
const (
	maxName     = 64   // display name, characters
	maxChatName = 100  // group name, characters
	maxText     = 4000 // message text, characters
	batchSize   = 200  // messages per insert
	progressN   = 1000 // documents between progress lines
)

// Counts tallies one collection.
type Counts struct {
	Read, Imported, Present, Refused int
}

// Problem is one document refused.
type Problem struct {
	Collection, ID, Reason string
}

// Summary is what an import did.
type Summary struct {
	Users, Chats, Messages Counts
	ReadMarks              int // read marks that moved
	Problems               []Problem
}

// Print writes the summary for people.
func (s *Summary) Print(w io.Writer) {
	fmt.Fprintln(w, "import summary:")
	for _, c := range []struct {
		name string
		n    Counts
	}{{"users", s.Users}, {"chats", s.Chats}, {"messages", s.Messages}} {
		fmt.Fprintf(w, "  %-9s read %d, imported %d, already present %d, refused %d\n", c.name+":", c.n.Read, c.n.Imported, c.n.Present, c.n.Refused)
	}
	fmt.Fprintf(w, "  read marks set: %d\n", s.ReadMarks)
	if len(s.Problems) > 0 {
		fmt.Fprintf(w, "refused documents (%d):\n", len(s.Problems))
		for _, p := range s.Problems {
			fmt.Fprintf(w, "  %s %s: %s\n", p.Collection, p.ID, p.Reason)
		}
	}
}

// Importer reads one MERN database and writes one Parley store.
type Importer struct {
	src      *mongo.Database
	dst      Target
	progress io.Writer
	sum      Summary
	users    map[string]bool        // ids present in the target after the users pass
	chats    map[string]*store.Chat // chats present in the target after the chats pass
}

// New returns an importer; progress lines go to progress (nil: none).
func New(src *mongo.Database, dst Target, progress io.Writer) *Importer {
	if progress == nil {
		progress = io.Discard
	}
	return &Importer{src: src, dst: dst, progress: progress, users: map[string]bool{}, chats: map[string]*store.Chat{}}
}

// Connect opens the MERN database at uri.
func Connect(ctx context.Context, uri, db string) (*mongo.Client, *mongo.Database, error) {
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(15 * time.Second))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s: %w", redact(uri), err)
	}
	if err := client.Ping(ctx, nil); err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, nil, fmt.Errorf("reach %s: %w", redact(uri), err)
	}
	return client, client.Database(db), nil
}

// redact hides a URI's password for messages.
func redact(uri string) string {
	if at := strings.LastIndex(uri, "@"); at > 0 {
		if scheme := strings.Index(uri, "://"); scheme > 0 && scheme < at {
			return uri[:scheme+3] + "…@" + uri[at+1:]
		}
	}
	return uri
}

// Run imports users, then chats, then messages. Refused documents are in
// the summary; an error means the import could not go on (a database
// unreachable), and what was written so far stays.
func (im *Importer) Run(ctx context.Context) (*Summary, error) {
	if err := im.importUsers(ctx); err != nil {
		return &im.sum, err
	}
	if err := im.importChats(ctx); err != nil {
		return &im.sum, err
	}
	if err := im.importMessages(ctx); err != nil {
		return &im.sum, err
	}
	return &im.sum, nil
}

func (im *Importer) refuse(c *Counts, collection, id, reason string) {
	c.Refused++
	im.sum.Problems = append(im.sum.Problems, Problem{Collection: collection, ID: id, Reason: reason})
}

func (im *Importer) step(what string, n int, force bool) {
	if force || n%progressN == 0 {
		fmt.Fprintf(im.progress, "%s: %d read\n", what, n)
	}
}

// each runs fn on every document of a collection in _id order.
func (im *Importer) each(ctx context.Context, collection string, filter any, sort bson.D, fn func(raw bson.Raw) error) error {
	cur, err := im.src.Collection(collection).Find(ctx, filter, options.Find().SetSort(sort))
	if err != nil {
		return fmt.Errorf("read %s: %w", collection, err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		if err := fn(cur.Current); err != nil {
			return err
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("read %s: %w", collection, err)
	}
	return nil
}

// docID is a document's _id as text, for reports.
func docID(raw bson.Raw) string {
	v, err := raw.LookupErr("_id")
	if err != nil {
		return "(no _id)"
	}
	if oid, ok := v.ObjectIDOK(); ok {
		return oid.Hex()
	}
	return v.String()
}

// fieldError says what is wrong with a document's field.
type fieldError struct{ field, reason string }

func (e *fieldError) Error() string { return e.field + ": " + e.reason }

func objectID(raw bson.Raw, field string, required bool) (string, error) {
	v, err := raw.LookupErr(field)
	if err != nil || v.Type == bson.TypeNull {
		if required {
			return "", &fieldError{field, "missing"}
		}
		return "", nil
	}
	oid, ok := v.ObjectIDOK()
	if !ok {
		return "", &fieldError{field, "not an ObjectId"}
	}
	return oid.Hex(), nil
}

func stringField(raw bson.Raw, field string, required bool) (string, error) {
	v, err := raw.LookupErr(field)
	if err != nil || v.Type == bson.TypeNull {
		if required {
			return "", &fieldError{field, "missing"}
		}
		return "", nil
	}
	s, ok := v.StringValueOK()
	if !ok {
		return "", &fieldError{field, "not a string"}
	}
	return s, nil
}

func boolField(raw bson.Raw, field string) (bool, error) {
	v, err := raw.LookupErr(field)
	if err != nil || v.Type == bson.TypeNull {
		return false, nil
	}
	b, ok := v.BooleanOK()
	if !ok {
		return false, &fieldError{field, "not a boolean"}
	}
	return b, nil
}

func idArray(raw bson.Raw, field string) ([]string, error) {
	v, err := raw.LookupErr(field)
	if err != nil || v.Type == bson.TypeNull {
		return nil, nil
	}
	arr, ok := v.ArrayOK()
	if !ok {
		return nil, &fieldError{field, "not an array"}
	}
	vals, err := arr.Values()
	if err != nil {
		return nil, &fieldError{field, "unreadable array"}
	}
	out := make([]string, 0, len(vals))
	for _, e := range vals {
		oid, ok := e.ObjectIDOK()
		if !ok {
			return nil, &fieldError{field, "holds something other than ObjectIds"}
		}
		out = append(out, oid.Hex())
	}
	return out, nil
}

// createdAt is the document's createdAt, or its ObjectId's time (the app's
// user schema misspells `timestamps`, so its users have none).
func createdAt(raw bson.Raw, id string) (time.Time, error) {
	if v, err := raw.LookupErr("createdAt"); err == nil && v.Type != bson.TypeNull {
		dt, ok := v.DateTimeOK()
		if !ok {
			return time.Time{}, &fieldError{"createdAt", "not a date"}
		}
		return time.UnixMilli(dt).UTC(), nil
	}
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return time.Time{}, err
	}
	return oid.Timestamp().UTC(), nil
}

// cleanText trims s and turns control characters into spaces.
func cleanText(s string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s))
}

func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return strings.TrimSpace(string([]rune(s)[:n]))
}

// user reads one users document.
func user(raw bson.Raw) (*store.User, error) {
	id, err := objectID(raw, "_id", true)
	if err != nil {
		return nil, err
	}
	name, err := stringField(raw, "name", true)
	if err != nil {
		return nil, err
	}
	email, err := stringField(raw, "email", true)
	if err != nil {
		return nil, err
	}
	hash, err := stringField(raw, "password", true)
	if err != nil {
		return nil, err
	}
	pic, err := stringField(raw, "pic", false)
	if err != nil {
		return nil, err
	}
	if !auth.ValidPictureURL(pic) {
		pic = "" // not a picture a browser should load; the default shows instead
	}
	at, err := createdAt(raw, id)
	if err != nil {
		return nil, err
	}
	addr, perr := mail.ParseAddress(email)
	if perr != nil || addr.Address != strings.TrimSpace(email) || !strings.Contains(email[strings.LastIndexByte(email, '@')+1:], ".") {
		return nil, &fieldError{"email", fmt.Sprintf("%q is not an email address", email)}
	}
	if !strings.HasPrefix(hash, "$2a$") && !strings.HasPrefix(hash, "$2b$") && !strings.HasPrefix(hash, "$2y$") {
		return nil, &fieldError{"password", "not a bcrypt hash"}
	}
	display := cut(cleanText(name), maxName)
	if display == "" {
		return nil, &fieldError{"name", "empty"}
	}
	return &store.User{
		ID: id, Email: strings.ToLower(addr.Address), DisplayName: display, PasswordHash: hash,
		PictureURL: pic, CreatedAt: at.Truncate(time.Millisecond),
	}, nil
}

// usernameTries bounds the generated usernames tried per user.
const usernameTries = 8

func (im *Importer) importUsers(ctx context.Context) error {
	c := &im.sum.Users
	err := im.each(ctx, "users", bson.D{}, bson.D{{Key: "_id", Value: 1}}, func(raw bson.Raw) error {
		c.Read++
		im.step("users", c.Read, false)
		u, err := user(raw)
		if err != nil {
			im.refuse(c, "users", docID(raw), err.Error())
			return nil
		}
		if _, err := im.dst.UserByID(ctx, u.ID); err == nil {
			c.Present++
			im.users[u.ID] = true
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("look up user %s: %w", u.ID, err)
		}
		for try := range usernameTries {
			u.Username = mern.UsernameFor(u.DisplayName, u.Email, try)
			err = im.dst.CreateUser(ctx, u)
			if store.ConflictOn(err) != store.ConflictUsername {
				break
			}
		}
		switch {
		case err == nil:
			c.Imported++
			im.users[u.ID] = true
		case store.ConflictOn(err) == store.ConflictEmail:
			im.refuse(c, "users", u.ID, fmt.Sprintf("email %s already belongs to another Parley account", u.Email))
		case store.ConflictOn(err) == store.ConflictID:
			c.Present++
			im.users[u.ID] = true
		default:
			return fmt.Errorf("write user %s: %w", u.ID, err)
		}
		return nil
	})
	im.step("users", c.Read, true)
	return err
}

// chat reads one chats document into a Parley chat, its members being the
// users that made it into the target.
func (im *Importer) chat(raw bson.Raw) (*store.Chat, error) {
	id, err := objectID(raw, "_id", true)
	if err != nil {
		return nil, err
	}
	group, err := boolField(raw, "isGroupChat")
	if err != nil {
		return nil, err
	}
	name, err := stringField(raw, "chatName", false)
	if err != nil {
		return nil, err
	}
	users, err := idArray(raw, "users")
	if err != nil {
		return nil, err
	}
	admin, err := objectID(raw, "groupAdmin", false)
	if err != nil {
		return nil, err
	}
	at, err := createdAt(raw, id)
	if err != nil {
		return nil, err
	}
	c := &store.Chat{ID: id, CreatedAt: at.Truncate(time.Millisecond)}
	seen := map[string]bool{}
	var unknown []string
	for _, u := range users {
		if seen[u] {
			continue
		}
		seen[u] = true
		if !im.users[u] {
			unknown = append(unknown, u)
			continue
		}
		c.Members = append(c.Members, store.Member{UserID: u, Role: store.RoleMember})
	}
	if !group {
		if len(c.Members) != 2 || len(unknown) > 0 {
			return nil, &fieldError{"users", fmt.Sprintf("a direct chat needs two imported users, has %d (not imported: %v)", len(c.Members), unknown)}
		}
		c.Type = store.ChatDirect
		a, b := c.Members[0].UserID, c.Members[1].UserID
		if a > b {
			a, b = b, a
		}
		c.DirectKey = a + ":" + b
		return c, nil
	}
	if len(c.Members) == 0 {
		return nil, &fieldError{"users", "a group without any imported user"}
	}
	c.Type = store.ChatGroup
	c.DirectKey = "group:" + id
	c.Name = cut(cleanText(name), maxChatName)
	if c.Name == "" {
		c.Name = "Group"
	}
	owner := 0 // the groupAdmin if still a member, else the first member
	for i, m := range c.Members {
		if m.UserID == admin {
			owner = i
		}
	}
	c.Members[owner].Role = store.RoleOwner
	return c, nil
}

func (im *Importer) importChats(ctx context.Context) error {
	c := &im.sum.Chats
	err := im.each(ctx, "chats", bson.D{}, bson.D{{Key: "_id", Value: 1}}, func(raw bson.Raw) error {
		c.Read++
		im.step("chats", c.Read, false)
		id := docID(raw)
		if existing, err := im.dst.ChatByID(ctx, id); err == nil {
			c.Present++
			im.chats[id] = existing
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("look up chat %s: %w", id, err)
		}
		ch, err := im.chat(raw)
		if err != nil {
			im.refuse(c, "chats", id, err.Error())
			return nil
		}
		err = im.dst.CreateChat(ctx, ch)
		switch on := store.ConflictOn(err); {
		case err == nil:
			c.Imported++
			im.chats[id] = ch
		case on == store.ConflictID:
			c.Present++
			im.chats[id] = ch
		case on == store.ConflictDirectKey || on == store.ConflictUnknown:
			im.refuse(c, "chats", id, "a second direct chat of the same two users; its messages are not imported")
		default:
			return fmt.Errorf("write chat %s: %w", id, err)
		}
		return nil
	})
	im.step("chats", c.Read, true)
	return err
}

// message reads one messages document; seq is set by the caller.
func (im *Importer) message(raw bson.Raw, chatID string) (*store.Message, []string, error) {
	id, err := objectID(raw, "_id", true)
	if err != nil {
		return nil, nil, err
	}
	sender, err := objectID(raw, "sender", true)
	if err != nil {
		return nil, nil, err
	}
	content, err := stringField(raw, "content", true)
	if err != nil {
		return nil, nil, err
	}
	readBy, err := idArray(raw, "readBy")
	if err != nil {
		return nil, nil, err
	}
	at, err := createdAt(raw, id)
	if err != nil {
		return nil, nil, err
	}
	if !im.users[sender] {
		return nil, nil, &fieldError{"sender", sender + " was not imported"}
	}
	if strings.TrimSpace(content) == "" {
		return nil, nil, &fieldError{"content", "empty"}
	}
	if n := utf8.RuneCountInString(content); n > maxText {
		return nil, nil, &fieldError{"content", fmt.Sprintf("%d characters, more than Parley's %d", n, maxText)}
	}
	return &store.Message{
		ID: id, ChatID: chatID, SenderID: sender, Text: content, Attachments: []store.Attachment{},
		CreatedAt: at.Truncate(time.Millisecond),
	}, readBy, nil
}

func (im *Importer) importMessages(ctx context.Context) error {
	c := &im.sum.Messages
	total, err := im.src.Collection("messages").CountDocuments(ctx, bson.D{})
	if err != nil {
		return fmt.Errorf("count messages: %w", err)
	}
	done := 0
	for chatID, ch := range im.chats {
		oid, _ := bson.ObjectIDFromHex(chatID)
		var msgs []*store.Message
		readers := map[string]int64{} // user -> highest seq in readBy
		err := im.each(ctx, "messages", bson.D{{Key: "chat", Value: oid}}, bson.D{{Key: "createdAt", Value: 1}, {Key: "_id", Value: 1}}, func(raw bson.Raw) error {
			c.Read++
			im.step("messages", c.Read, false)
			m, readBy, err := im.message(raw, chatID)
			if err != nil {
				im.refuse(c, "messages", docID(raw), err.Error())
				return nil
			}
			m.Seq = int64(len(msgs) + 1)
			msgs = append(msgs, m)
			for _, u := range readBy {
				readers[u] = max(readers[u], m.Seq)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := im.writeMessages(ctx, msgs); err != nil {
			return err
		}
		for _, m := range ch.Members {
			if seq := readers[m.UserID]; seq > 0 {
				moved, err := im.dst.SetReadSeq(ctx, chatID, m.UserID, seq)
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("read mark of %s in %s: %w", m.UserID, chatID, err)
				}
				if moved {
					im.sum.ReadMarks++
				}
			}
		}
		done++
		fmt.Fprintf(im.progress, "messages: %d of %d chats, %d of %d messages read\n", done, len(im.chats), c.Read, total)
	}
	if orphans := int(total) - c.Read; orphans > 0 {
		c.Read += orphans
		im.refuse(c, "messages", "-", fmt.Sprintf("%d messages belong to no imported chat", orphans))
		c.Refused += orphans - 1
	}
	return nil
}

// writeMessages inserts a chat's messages in batches. A message the store
// refuses as a duplicate is present when the message at its seq is itself
// (an earlier run wrote it); otherwise its place is taken by another.
func (im *Importer) writeMessages(ctx context.Context, msgs []*store.Message) error {
	c := &im.sum.Messages
	for len(msgs) > 0 {
		batch := msgs[:min(batchSize, len(msgs))]
		n, err := im.dst.InsertMessages(ctx, batch)
		c.Imported += n
		if err == nil {
			msgs = msgs[len(batch):]
			continue
		}
		if !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("write messages of %s: %w", batch[0].ChatID, err)
		}
		m := batch[n]
		at, _, herr := im.dst.History(ctx, m.ChatID, m.Seq+1, 0, 1)
		if herr != nil {
			return fmt.Errorf("check message %s: %w", m.ID, herr)
		}
		if len(at) == 1 && at[0].ID == m.ID {
			c.Present++
		} else {
			im.refuse(c, "messages", m.ID, fmt.Sprintf("place %d of chat %s is taken by a message sent in Parley since an earlier import", m.Seq, m.ChatID))
		}
		msgs = msgs[n+1:]
	}
	return nil
}
