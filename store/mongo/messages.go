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

type messageDoc struct {
	ID       string `bson:"_id"`
	ChatID   string `bson:"chatId"`
	Seq      int64  `bson:"seq"`
	SenderID string `bson:"senderId"`
	Text     string `bson:"text"`
	// Attachments is never nil on write so ChatsWithFile's "attachments.id"
	// always walks an array.
	Attachments []attachmentDoc `bson:"attachments"`
	// ClientMsgID is the unique index key, never empty: see clientKey.
	ClientMsgID string        `bson:"clientMsgId"`
	CreatedAt   bson.DateTime `bson:"createdAt"`
}

type attachmentDoc struct {
	ID          string `bson:"id"`
	Name        string `bson:"name"`
	Size        int64  `bson:"size"`
	ContentType string `bson:"contentType"`
}

// The unique (chatId, senderId, clientMsgId) index must let a sender post any
// number of messages without a client id, but FerretDB has no partial
// indexes and every unique index counts a missing or null field as a value.
// So the stored key is never empty: a client's id is stored as "c:<id>", and
// a message without one gets "n:<message id>", unique by construction. The
// prefixes keep the two kinds apart whatever a client sends, and on read
// "n:" maps back to "".
const (
	clientKeyPrefix = "c:"
	noClientPrefix  = "n:"
)

func clientKey(m *store.Message) string {
	if m.ClientMsgID == "" {
		return noClientPrefix + m.ID
	}
	return clientKeyPrefix + m.ClientMsgID
}

func toMessageDoc(m *store.Message) messageDoc {
	atts := make([]attachmentDoc, len(m.Attachments))
	for i, a := range m.Attachments {
		atts[i] = attachmentDoc{ID: a.ID, Name: a.Name, Size: a.Size, ContentType: a.ContentType}
	}
	return messageDoc{
		ID:          m.ID,
		ChatID:      m.ChatID,
		Seq:         m.Seq,
		SenderID:    m.SenderID,
		Text:        m.Text,
		Attachments: atts,
		ClientMsgID: clientKey(m),
		CreatedAt:   toDate(m.CreatedAt),
	}
}

func (d *messageDoc) message() store.Message {
	atts := make([]store.Attachment, len(d.Attachments))
	for i, a := range d.Attachments {
		atts[i] = store.Attachment{ID: a.ID, Name: a.Name, Size: a.Size, ContentType: a.ContentType}
	}
	return store.Message{
		ID:          d.ID,
		ChatID:      d.ChatID,
		Seq:         d.Seq,
		SenderID:    d.SenderID,
		Text:        d.Text,
		Attachments: atts,
		ClientMsgID: d.clientMsgID(),
		CreatedAt:   fromDate(d.CreatedAt),
	}
}

func (d *messageDoc) clientMsgID() string {
	if k, ok := strings.CutPrefix(d.ClientMsgID, clientKeyPrefix); ok {
		return k
	}
	return "" // an "n:" key stands for "the client sent none"
}

// InsertMessages is one ordered insertMany: the whole batch is one round
// trip, and the server stops at the first refused document, reporting its
// index, so msgs[:n] landed and msgs[n] did not. When the error carries no
// index (a network error, say) n is learned by reading which ids landed.
func (s *Store) InsertMessages(ctx context.Context, msgs []*store.Message) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	docs := make([]any, len(msgs))
	for i, m := range msgs {
		if m.ID == "" {
			m.ID = store.NewID()
		}
		if m.CreatedAt.IsZero() {
			m.CreatedAt = time.Now()
		}
		docs[i] = toMessageDoc(m)
	}
	_, err := s.messages.InsertMany(ctx, docs, options.InsertMany().SetOrdered(true))
	if err == nil {
		return len(msgs), nil
	}

	n := -1
	var we *mdriver.BulkWriteError
	var bwe mdriver.BulkWriteException
	if errors.As(err, &bwe) && len(bwe.WriteErrors) > 0 {
		first := bwe.WriteErrors[0]
		for _, e := range bwe.WriteErrors[1:] { // servers list them in order; be sure
			if e.Index < first.Index {
				first = e
			}
		}
		if first.Index >= 0 && first.Index < len(msgs) {
			n, we = first.Index, &first
		}
	}
	if n < 0 {
		var cerr error
		if n, cerr = s.countLanded(ctx, msgs); cerr != nil {
			return 0, fmt.Errorf("mongo: insert messages: %w (and counting what landed: %v)", err, cerr)
		}
		if n == len(msgs) { // the error came after every write took
			return n, nil
		}
	}
	if we != nil && mdriver.IsDuplicateKeyError(we.WriteError) {
		return n, s.messageConflict(ctx, we.WriteError, msgs[n])
	}
	if we == nil && mdriver.IsDuplicateKeyError(err) {
		return n, s.messageConflict(ctx, err, msgs[n])
	}
	return n, fmt.Errorf("mongo: insert message %d of %d: %w", n+1, len(msgs), err)
}

// countLanded finds how many of msgs, in order, are stored: with an ordered
// insert that is the length of the stored prefix.
func (s *Store) countLanded(ctx context.Context, msgs []*store.Message) (int, error) {
	ctx, cancel := detached(ctx)
	defer cancel()
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	cur, err := s.messages.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return 0, err
	}
	var found []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &found); err != nil {
		return 0, err
	}
	stored := make(map[string]bool, len(found))
	for _, f := range found {
		stored[f.ID] = true
	}
	n := 0
	for n < len(msgs) && stored[msgs[n].ID] {
		n++
	}
	return n, nil
}

// messageConflict names the index that refused m. The client id is probed
// first: if m is a resend that already landed, the caller wants to answer
// with the stored message rather than retry under a new seq.
func (s *Store) messageConflict(ctx context.Context, err error, m *store.Message) error {
	probes := []probe{}
	if m.ClientMsgID != "" {
		probes = append(probes, probe{store.ConflictClientMsgID, idxClientMsgID, s.messages, bson.D{
			{Key: "chatId", Value: m.ChatID}, {Key: "senderId", Value: m.SenderID}, {Key: "clientMsgId", Value: clientKey(m)},
		}})
	}
	probes = append(probes,
		probe{store.ConflictSeq, idxSeq, s.messages, bson.D{{Key: "chatId", Value: m.ChatID}, {Key: "seq", Value: m.Seq}}},
		probe{store.ConflictID, idxPrimary, s.messages, bson.D{{Key: "_id", Value: m.ID}}},
	)
	return conflict(ctx, err, probes...)
}

func (s *Store) MessageByClientID(ctx context.Context, chatID, senderID, clientMsgID string) (*store.Message, error) {
	if clientMsgID == "" {
		return nil, notFound("message with client id", "")
	}
	filter := bson.D{
		{Key: "chatId", Value: chatID},
		{Key: "senderId", Value: senderID},
		{Key: "clientMsgId", Value: clientKeyPrefix + clientMsgID},
	}
	var d messageDoc
	if err := findOne(ctx, s.messages, filter, &d, "message with client id", clientMsgID); err != nil {
		return nil, err
	}
	m := d.message()
	return &m, nil
}

func (s *Store) LastSeq(ctx context.Context, chatID string) (int64, error) {
	m, err := s.LastMessage(ctx, chatID)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return m.Seq, nil
}

func (s *Store) LastMessage(ctx context.Context, chatID string) (*store.Message, error) {
	var d messageDoc
	err := findOne(ctx, s.messages, bson.D{{Key: "chatId", Value: chatID}}, &d, "last message of chat", chatID,
		options.FindOne().SetSort(bson.D{{Key: "seq", Value: -1}}))
	if err != nil {
		return nil, err
	}
	m := d.message()
	return &m, nil
}

// History reads one page off the (chatId, seq) index, walking away from the
// anchor: descending for the newest page or one before a seq (then reversed),
// ascending for a page after a seq. One extra document tells whether more
// lie beyond the page.
func (s *Store) History(ctx context.Context, chatID string, before, after int64, limit int) ([]store.Message, bool, error) {
	limit = max(limit, 0)
	filter := bson.D{{Key: "chatId", Value: chatID}}
	dir := -1
	switch {
	case before > 0:
		filter = append(filter, bson.E{Key: "seq", Value: bson.D{{Key: "$lt", Value: before}}})
	case after > 0:
		filter = append(filter, bson.E{Key: "seq", Value: bson.D{{Key: "$gt", Value: after}}})
		dir = 1
	}
	cur, err := s.messages.Find(ctx, filter, options.Find().
		SetSort(bson.D{{Key: "chatId", Value: 1}, {Key: "seq", Value: dir}}).
		SetLimit(int64(limit)+1))
	if err != nil {
		return nil, false, fmt.Errorf("mongo: history of chat %q: %w", chatID, err)
	}
	var docs []messageDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, false, fmt.Errorf("mongo: read history of chat %q: %w", chatID, err)
	}
	hasMore := len(docs) > limit
	if hasMore {
		docs = docs[:limit]
	}
	out := make([]store.Message, len(docs))
	for i := range docs {
		out[i] = docs[i].message()
	}
	if dir < 0 {
		slices.Reverse(out)
	}
	return out, hasMore, nil
}

func (s *Store) CountUnread(ctx context.Context, chatID, userID string, afterSeq int64) (int, error) {
	n, err := s.messages.CountDocuments(ctx, bson.D{
		{Key: "chatId", Value: chatID},
		{Key: "seq", Value: bson.D{{Key: "$gt", Value: afterSeq}}},
		{Key: "senderId", Value: bson.D{{Key: "$ne", Value: userID}}},
	})
	if err != nil {
		return 0, fmt.Errorf("mongo: count unread in chat %q: %w", chatID, err)
	}
	return int(n), nil
}

func (s *Store) ChatsWithFile(ctx context.Context, fileID string, limit int) ([]string, error) {
	// Distinct would be one call, but FerretDB pushes down only _id either
	// way; reading chatId alone keeps the transfer small.
	cur, err := s.messages.Find(ctx, bson.D{{Key: "attachments.id", Value: fileID}},
		options.Find().SetProjection(bson.D{{Key: "chatId", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("mongo: look for file %q in messages: %w", fileID, err)
	}
	defer cur.Close(ctx)
	seen := map[string]bool{}
	var ids []string
	for len(ids) < limit && cur.Next(ctx) {
		var doc struct {
			ChatID string `bson:"chatId"`
		}
		if err := cur.Decode(&doc); err != nil {
			return nil, fmt.Errorf("mongo: look for file %q in messages: %w", fileID, err)
		}
		if !seen[doc.ChatID] {
			seen[doc.ChatID] = true
			ids = append(ids, doc.ChatID)
		}
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("mongo: look for file %q in messages: %w", fileID, err)
	}
	return ids, nil
}
