// Package mongo is Parley's production storage engine, on MongoDB.
//
// It is written for MongoDB (atomic update operators, unique and compound
// indexes) and tested on FerretDB, which has fewer guarantees: no
// transactions, read-modify-write updates that can lose concurrent writes, no
// partial indexes, and duplicate-key errors that do not name the index. So
// every invariant the store promises is guarded by a unique index, and a
// refused write is attributed to its index by re-reading when the server does
// not say which one it was.
//
// Ids are the 24-hex strings of the store package, stored as strings (also as
// GridFS file ids), so nothing converts at the edge.
package mongo

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mdriver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/parley-chat/parley/store"
)

// Store implements store.Store on one MongoDB database.
type Store struct {
	client   *mdriver.Client
	db       *mdriver.Database
	users    *mdriver.Collection
	sessions *mdriver.Collection
	chats    *mdriver.Collection
	members  *mdriver.Collection
	messages *mdriver.Collection

	bucket     *mdriver.GridFSBucket
	filesColl  *mdriver.Collection
	chunksColl *mdriver.Collection
}

var _ store.Store = (*Store)(nil)

// Index names, so that a duplicate-key message from MongoDB (which names the
// index) maps straight to the invariant; FerretDB's does not, see conflict.
const (
	idxUsername    = "username_unique"
	idxEmail       = "email_unique"
	idxDirectKey   = "directKey_unique"
	idxSeq         = "chatId_seq_unique"
	idxClientMsgID = "chatId_senderId_clientMsgId_unique"
	idxPrimary     = "_id_"
)

// Open connects to uri, checks the server answers and makes sure every index
// the store relies on exists, so a store that opened is a store whose
// invariants are guarded.
func Open(ctx context.Context, uri, dbName string) (*Store, error) {
	client, err := mdriver.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return nil, fmt.Errorf("mongo: connect: %w", err)
	}
	if err := client.Ping(ctx, readpref.Primary()); err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("mongo: ping: %w", err)
	}
	db := client.Database(dbName)
	bucket := db.GridFSBucket(options.GridFSBucket().SetName("uploads"))
	s := &Store{
		client:     client,
		db:         db,
		users:      db.Collection("users"),
		sessions:   db.Collection("sessions"),
		chats:      db.Collection("chats"),
		members:    db.Collection("members"),
		messages:   db.Collection("messages"),
		bucket:     bucket,
		filesColl:  bucket.GetFilesCollection(),
		chunksColl: bucket.GetChunksCollection(),
	}
	if err := s.createIndexes(ctx); err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, err
	}
	return s, nil
}

func (s *Store) createIndexes(ctx context.Context) error {
	unique := func(name string) *options.IndexOptionsBuilder {
		return options.Index().SetUnique(true).SetName(name)
	}
	named := func(name string) *options.IndexOptionsBuilder { return options.Index().SetName(name) }
	specs := []struct {
		coll   *mdriver.Collection
		models []mdriver.IndexModel
	}{
		{s.users, []mdriver.IndexModel{
			{Keys: bson.D{{Key: "username", Value: 1}}, Options: unique(idxUsername)},
			{Keys: bson.D{{Key: "email", Value: 1}}, Options: unique(idxEmail)},
			{Keys: bson.D{{Key: "displayNameLower", Value: 1}}, Options: named("displayNameLower")},
		}},
		{s.sessions, []mdriver.IndexModel{
			{Keys: bson.D{{Key: "userId", Value: 1}, {Key: "createdAt", Value: 1}}, Options: named("userId_createdAt")},
		}},
		// Every node reads the pending notes each reconcile interval (1s):
		// "pending_id" serves that read and its _id order, "expiresAt" the
		// minutely delete of expired notes.
		{s.sessionPurges(), []mdriver.IndexModel{
			{Keys: bson.D{{Key: "pending", Value: 1}, {Key: "_id", Value: 1}}, Options: named("pending_id")},
			{Keys: bson.D{{Key: "expiresAt", Value: 1}}, Options: named("expiresAt")},
		}},
		{s.chats, []mdriver.IndexModel{
			{Keys: bson.D{{Key: "directKey", Value: 1}}, Options: unique(idxDirectKey)},
		}},
		{s.members, []mdriver.IndexModel{
			{Keys: bson.D{{Key: "userId", Value: 1}}, Options: named("userId")},
			{Keys: bson.D{{Key: "chatId", Value: 1}}, Options: named("chatId")},
		}},
		{s.messages, []mdriver.IndexModel{
			{Keys: bson.D{{Key: "chatId", Value: 1}, {Key: "seq", Value: 1}}, Options: unique(idxSeq)},
			{Keys: bson.D{{Key: "chatId", Value: 1}, {Key: "senderId", Value: 1}, {Key: "clientMsgId", Value: 1}}, Options: unique(idxClientMsgID)},
			{Keys: bson.D{{Key: "attachments.id", Value: 1}}, Options: named("attachments_id")},
		}},
		// CreateFile writes the GridFS layout itself, so the driver never
		// gets to create the standard GridFS indexes before a first upload:
		// they are made here, under the names the driver gives them, so a
		// database the driver already set up is left as it is. "orphans"
		// serves the orphan sweep.
		{s.filesColl, []mdriver.IndexModel{
			{Keys: bson.D{{Key: "filename", Value: 1}, {Key: "uploadDate", Value: 1}}, Options: named("filename_1_uploadDate_1")},
			{Keys: bson.D{{Key: "metadata.kind", Value: 1}, {Key: "metadata.attached", Value: 1}, {Key: "metadata.createdAt", Value: 1}}, Options: named("orphans")},
		}},
		{s.chunksColl, []mdriver.IndexModel{
			{Keys: bson.D{{Key: "files_id", Value: 1}, {Key: "n", Value: 1}}, Options: unique("files_id_1_n_1")},
		}},
	}
	for _, sp := range specs {
		missing, err := missingIndexes(ctx, sp.coll, sp.models)
		if err != nil {
			return err
		}
		if len(missing) == 0 {
			continue
		}
		if _, err := sp.coll.Indexes().CreateMany(ctx, missing); err != nil {
			return fmt.Errorf("mongo: create indexes on %s: %w", sp.coll.Name(), err)
		}
	}
	return nil
}

// missingIndexes leaves out the models whose index name exists already.
// MongoDB would accept the same createIndexes again, but FerretDB 1.24
// drops the connection on it, so every restart after the first would fail.
func missingIndexes(ctx context.Context, coll *mdriver.Collection, models []mdriver.IndexModel) ([]mdriver.IndexModel, error) {
	specs, err := coll.Indexes().ListSpecifications(ctx)
	if err != nil {
		return nil, fmt.Errorf("mongo: list indexes on %s: %w", coll.Name(), err)
	}
	have := make(map[string]bool, len(specs))
	for _, sp := range specs {
		have[sp.Name] = true
	}
	var missing []mdriver.IndexModel
	for _, m := range models {
		var o options.IndexOptions
		for _, set := range m.Options.List() {
			_ = set(&o)
		}
		if o.Name == nil || !have[*o.Name] {
			missing = append(missing, m)
		}
	}
	return missing, nil
}

// Ping reports whether the server answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx, readpref.Primary()); err != nil {
		return fmt.Errorf("mongo: ping: %w", err)
	}
	return nil
}

// Close disconnects, waiting a bounded time for operations in flight.
func (s *Store) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.client.Disconnect(ctx); err != nil {
		return fmt.Errorf("mongo: disconnect: %w", err)
	}
	return nil
}

// Drop removes the whole database; tests use it to leave nothing behind.
func (s *Store) Drop(ctx context.Context) error {
	if err := s.db.Drop(ctx); err != nil {
		return fmt.Errorf("mongo: drop database: %w", err)
	}
	return nil
}

// BSON datetimes hold milliseconds; converting through UnixMilli keeps the
// instant a caller gets back equal to what a later query compares against.
func toDate(t time.Time) bson.DateTime { return bson.DateTime(t.UnixMilli()) }

func fromDate(d bson.DateTime) time.Time { return time.UnixMilli(int64(d)).UTC() }

// optDate stores the zero time as an absent field, so "never" needs no
// sentinel date.
func optDate(t time.Time) *bson.DateTime {
	if t.IsZero() {
		return nil
	}
	d := toDate(t)
	return &d
}

func fromOptDate(d *bson.DateTime) time.Time {
	if d == nil {
		return time.Time{}
	}
	return fromDate(*d)
}

func notFound(what, id string) error {
	return fmt.Errorf("mongo: %s %q: %w", what, id, store.ErrNotFound)
}

// findOne decodes the single document filter matches into out, mapping "no
// document" to store.ErrNotFound.
func findOne(ctx context.Context, c *mdriver.Collection, filter any, out any, what, key string, opts ...options.Lister[options.FindOneOptions]) error {
	err := c.FindOne(ctx, filter, opts...).Decode(out)
	if errors.Is(err, mdriver.ErrNoDocuments) {
		return notFound(what, key)
	}
	if err != nil {
		return fmt.Errorf("mongo: find %s %q: %w", what, key, err)
	}
	return nil
}

// exists reports whether a document matches filter.
func exists(ctx context.Context, c *mdriver.Collection, filter any) (bool, error) {
	err := c.FindOne(ctx, filter, options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	if errors.Is(err, mdriver.ErrNoDocuments) {
		return false, nil
	}
	return err == nil, err
}

// dupIndexRe finds the index a MongoDB duplicate-key message names:
// "E11000 duplicate key error collection: db.c index: name dup key: {...}".
var dupIndexRe = regexp.MustCompile(`index: (\S+)`)

// dupIndex returns the name of the unique index err reports, or "" when the
// server did not name one (FerretDB never does).
func dupIndex(err error) string {
	var msg string
	var we mdriver.WriteException
	var bwe mdriver.BulkWriteException
	switch {
	case errors.As(err, &bwe) && len(bwe.WriteErrors) > 0:
		msg = bwe.WriteErrors[0].Message
	case errors.As(err, &we) && len(we.WriteErrors) > 0:
		msg = we.WriteErrors[0].Message
	default:
		msg = err.Error()
	}
	if m := dupIndexRe.FindStringSubmatch(msg); m != nil {
		return m[1]
	}
	return ""
}

// probe is one invariant a refused write may have hit and the read that
// tells whether it did.
type probe struct {
	on     store.Conflict
	index  string
	coll   *mdriver.Collection
	filter bson.D
}

// conflict turns a duplicate-key error into the *store.ConflictError naming
// the invariant. MongoDB names the index; otherwise each probe is re-read in
// order and the first that finds a document is the culprit. Should the
// culprit vanish between the write and the read, the answer is
// ConflictUnknown and the caller re-checks.
func conflict(ctx context.Context, err error, probes ...probe) error {
	if name := dupIndex(err); name != "" {
		for _, p := range probes {
			if p.index == name {
				return &store.ConflictError{On: p.on}
			}
		}
	}
	for _, p := range probes {
		ok, rerr := exists(ctx, p.coll, p.filter)
		if rerr != nil {
			return fmt.Errorf("mongo: attribute duplicate key (%w): %w", err, rerr)
		}
		if ok {
			return &store.ConflictError{On: p.on}
		}
	}
	return &store.ConflictError{On: store.ConflictUnknown}
}

// detached gives clean-up work a context that outlives a cancelled caller:
// leaving half a write behind is worse than finishing the undo.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
}
