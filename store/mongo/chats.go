package mongo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mdriver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/parley-chat/parley/store"
)

type chatDoc struct {
	ID        string        `bson:"_id"`
	Type      string        `bson:"type"`
	Name      string        `bson:"name"`
	DirectKey string        `bson:"directKey"`
	CreatedAt bson.DateTime `bson:"createdAt"`
}

// memberDoc is one membership. Members live in their own collection rather
// than an array in the chat: every change is then a single-document write
// addressed by _id (the only lookup FerretDB pushes down), and raising
// readSeq is a plain $max on a top-level field instead of a positional
// update, which FerretDB supports poorly.
type memberDoc struct {
	ID       string        `bson:"_id"` // memberKey(chatId, userId)
	ChatID   string        `bson:"chatId"`
	UserID   string        `bson:"userId"`
	Role     string        `bson:"role"`
	ReadSeq  int64         `bson:"readSeq"`
	JoinedAt bson.DateTime `bson:"joinedAt"`
}

// memberKey makes the membership its own unique key, so adding a member
// twice is refused by the _id index and needs no read first.
func memberKey(chatID, userID string) string { return chatID + ":" + userID }

func (d *chatDoc) chat(members []store.Member) store.Chat {
	return store.Chat{
		ID:        d.ID,
		Type:      d.Type,
		Name:      d.Name,
		DirectKey: d.DirectKey,
		Members:   members,
		CreatedAt: fromDate(d.CreatedAt),
	}
}

func memberDocs(chatID string, members []store.Member, joined time.Time) []any {
	docs := make([]any, 0, len(members))
	seen := make(map[string]bool, len(members))
	for _, m := range members {
		if seen[m.UserID] { // a user is in a chat once; the first entry wins
			continue
		}
		seen[m.UserID] = true
		docs = append(docs, memberDoc{
			ID:       memberKey(chatID, m.UserID),
			ChatID:   chatID,
			UserID:   m.UserID,
			Role:     m.Role,
			ReadSeq:  m.ReadSeq,
			JoinedAt: toDate(joined),
		})
	}
	return docs
}

// CreateChat writes the members first and the chat document last. Without
// transactions two writes cannot appear at once; this order makes the chat
// document the commit point: readers reach members only through a chat
// (ChatsByMember skips memberships whose chat does not exist), so nobody sees
// a chat without its members. A refused chat takes its members back with it.
func (s *Store) CreateChat(ctx context.Context, c *store.Chat) error {
	if c.ID == "" {
		c.ID = store.NewID()
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = time.Now()
	}
	// A taken id would make the member writes land in someone else's chat.
	switch taken, err := exists(ctx, s.chats, bson.D{{Key: "_id", Value: c.ID}}); {
	case err != nil:
		return fmt.Errorf("mongo: check chat id: %w", err)
	case taken:
		return &store.ConflictError{On: store.ConflictID}
	}

	if docs := memberDocs(c.ID, c.Members, c.CreatedAt); len(docs) > 0 {
		if _, err := s.members.InsertMany(ctx, docs); err != nil {
			s.dropMembers(ctx, c.ID)
			if mdriver.IsDuplicateKeyError(err) {
				return &store.ConflictError{On: store.ConflictID}
			}
			return fmt.Errorf("mongo: insert members of chat %q: %w", c.ID, err)
		}
	}

	_, err := s.chats.InsertOne(ctx, chatDoc{
		ID:        c.ID,
		Type:      c.Type,
		Name:      c.Name,
		DirectKey: c.DirectKey,
		CreatedAt: toDate(c.CreatedAt),
	})
	if err == nil {
		return nil
	}
	s.dropMembers(ctx, c.ID)
	if mdriver.IsDuplicateKeyError(err) {
		return conflict(ctx, err,
			probe{store.ConflictDirectKey, idxDirectKey, s.chats, bson.D{{Key: "directKey", Value: c.DirectKey}}},
			probe{store.ConflictID, idxPrimary, s.chats, bson.D{{Key: "_id", Value: c.ID}}},
		)
	}
	return fmt.Errorf("mongo: insert chat: %w", err)
}

// dropMembers undoes the member writes of a chat that was not created. It is
// best effort: what it misses is invisible, as no chat document leads to it.
func (s *Store) dropMembers(ctx context.Context, chatID string) {
	ctx, cancel := detached(ctx)
	defer cancel()
	_, _ = s.members.DeleteMany(ctx, bson.D{{Key: "chatId", Value: chatID}})
}

func (s *Store) ChatByID(ctx context.Context, id string) (*store.Chat, error) {
	return s.chatBy(ctx, bson.D{{Key: "_id", Value: id}}, "chat", id)
}

func (s *Store) ChatByDirectKey(ctx context.Context, key string) (*store.Chat, error) {
	return s.chatBy(ctx, bson.D{{Key: "directKey", Value: key}}, "chat with key", key)
}

func (s *Store) chatBy(ctx context.Context, filter bson.D, what, key string) (*store.Chat, error) {
	var d chatDoc
	if err := findOne(ctx, s.chats, filter, &d, what, key); err != nil {
		return nil, err
	}
	byChat, err := s.membersOf(ctx, []string{d.ID})
	if err != nil {
		return nil, err
	}
	c := d.chat(byChat[d.ID])
	return &c, nil
}

// membersOf loads the members of chatIDs, grouped by chat.
func (s *Store) membersOf(ctx context.Context, chatIDs []string) (map[string][]store.Member, error) {
	cur, err := s.members.Find(ctx, bson.D{{Key: "chatId", Value: bson.D{{Key: "$in", Value: chatIDs}}}},
		options.Find().SetSort(bson.D{{Key: "joinedAt", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("mongo: find members: %w", err)
	}
	var docs []memberDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: read members: %w", err)
	}
	out := make(map[string][]store.Member, len(chatIDs))
	for _, d := range docs {
		out[d.ChatID] = append(out[d.ChatID], store.Member{UserID: d.UserID, Role: d.Role, ReadSeq: d.ReadSeq})
	}
	return out, nil
}

func (s *Store) ChatsByMember(ctx context.Context, userID string) ([]store.Chat, error) {
	cur, err := s.members.Find(ctx, bson.D{{Key: "userId", Value: userID}},
		options.Find().SetProjection(bson.D{{Key: "chatId", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("mongo: find memberships of user %q: %w", userID, err)
	}
	var mine []struct {
		ChatID string `bson:"chatId"`
	}
	if err := cur.All(ctx, &mine); err != nil {
		return nil, fmt.Errorf("mongo: read memberships of user %q: %w", userID, err)
	}
	if len(mine) == 0 {
		return nil, nil
	}
	chatIDs := make([]string, len(mine))
	for i, m := range mine {
		chatIDs[i] = m.ChatID
	}

	cur, err = s.chats.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: chatIDs}}}})
	if err != nil {
		return nil, fmt.Errorf("mongo: find chats of user %q: %w", userID, err)
	}
	var docs []chatDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: read chats of user %q: %w", userID, err)
	}
	if len(docs) == 0 {
		return nil, nil
	}
	found := make([]string, len(docs))
	for i, d := range docs {
		found[i] = d.ID
	}
	byChat, err := s.membersOf(ctx, found)
	if err != nil {
		return nil, err
	}
	out := make([]store.Chat, len(docs))
	for i := range docs {
		out[i] = docs[i].chat(byChat[docs[i].ID])
	}
	slices.SortFunc(out, func(a, b store.Chat) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (s *Store) RenameChat(ctx context.Context, id, name string) error {
	res, err := s.chats.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "name", Value: name}}}})
	if err != nil {
		return fmt.Errorf("mongo: rename chat %q: %w", id, err)
	}
	if res.MatchedCount == 0 {
		return notFound("chat", id)
	}
	return nil
}

// AddMembers inserts each membership and lets the _id index refuse those
// already present, which leaves them untouched as the contract wants; an
// unordered insert gets past the refusals in one round trip.
func (s *Store) AddMembers(ctx context.Context, chatID string, members []store.Member) error {
	docs := memberDocs(chatID, members, time.Now())
	if len(docs) == 0 {
		return nil
	}
	switch ok, err := exists(ctx, s.chats, bson.D{{Key: "_id", Value: chatID}}); {
	case err != nil:
		return fmt.Errorf("mongo: check chat %q: %w", chatID, err)
	case !ok:
		return notFound("chat", chatID)
	}
	_, err := s.members.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err == nil {
		return nil
	}
	var bwe mdriver.BulkWriteException
	if errors.As(err, &bwe) && bwe.WriteConcernError == nil {
		for _, we := range bwe.WriteErrors {
			if !mdriver.IsDuplicateKeyError(we.WriteError) {
				return fmt.Errorf("mongo: add members to chat %q: %w", chatID, err)
			}
		}
		return nil
	}
	return fmt.Errorf("mongo: add members to chat %q: %w", chatID, err)
}

func (s *Store) RemoveMember(ctx context.Context, chatID, userID string) error {
	res, err := s.members.DeleteOne(ctx, bson.D{{Key: "_id", Value: memberKey(chatID, userID)}})
	if err != nil {
		return fmt.Errorf("mongo: remove member %q from chat %q: %w", userID, chatID, err)
	}
	if res.DeletedCount == 0 {
		return notFound("member", memberKey(chatID, userID))
	}
	return nil
}

// SetReadSeq is one conditional $max: on MongoDB the filter and the update
// are atomic, so "moved" is exact under concurrency. FerretDB applies updates
// as read-modify-write, so there two racing calls can leave the lower value.
func (s *Store) SetReadSeq(ctx context.Context, chatID, userID string, seq int64) (bool, error) {
	key := memberKey(chatID, userID)
	res, err := s.members.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: key}, {Key: "readSeq", Value: bson.D{{Key: "$lt", Value: seq}}}},
		bson.D{{Key: "$max", Value: bson.D{{Key: "readSeq", Value: seq}}}})
	if err != nil {
		return false, fmt.Errorf("mongo: set read seq of %q: %w", key, err)
	}
	if res.ModifiedCount > 0 {
		return true, nil
	}
	// Nothing moved: either the position was already there, or there is no
	// such member, which the caller should hear about.
	switch ok, err := exists(ctx, s.members, bson.D{{Key: "_id", Value: key}}); {
	case err != nil:
		return false, fmt.Errorf("mongo: check member %q: %w", key, err)
	case !ok:
		return false, notFound("member", key)
	}
	return false, nil
}
