package mongo

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/parley-chat/parley/internal/testenv"
	"github.com/parley-chat/parley/store"
)

// TestSweepOrphanChunks: chunks an upload wrote before its process died
// (no file document) are removed once older than the cut-off; a running
// upload's (younger) and a complete file's chunks stay.
func TestSweepOrphanChunks(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, testenv.MongoURI(t), testenv.MongoDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Drop(ctx); _ = s.Close() }()
	chunk := func(fileID string, at time.Time, n int) {
		t.Helper()
		if _, err := s.chunksColl.InsertOne(ctx, bson.D{
			{Key: "_id", Value: bson.NewObjectIDFromTimestamp(at)}, {Key: "files_id", Value: fileID},
			{Key: "n", Value: n}, {Key: "data", Value: bson.Binary{Data: []byte("x")}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	crashed, running := store.NewID(), store.NewID()
	chunk(crashed, now.Add(-48*time.Hour), 0)
	chunk(crashed, now.Add(-48*time.Hour), 1)
	chunk(running, now.Add(-time.Minute), 0)
	complete := store.File{ID: store.NewID(), OwnerID: store.NewID(), Name: "a", Kind: store.FileAttachment, ContentType: "text/plain", CreatedAt: now.Add(-72 * time.Hour)}
	if err := s.CreateFile(ctx, &complete, strings.NewReader("kept")); err != nil {
		t.Fatal(err)
	}
	removed, err := s.SweepOrphanChunks(ctx, now.Add(-24*time.Hour))
	if err != nil || removed != 2 {
		t.Fatalf("SweepOrphanChunks = %d, %v; want the crashed upload's 2 chunks", removed, err)
	}
	count := func(fileID string) int64 {
		n, err := s.chunksColl.CountDocuments(ctx, bson.D{{Key: "files_id", Value: fileID}})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if count(crashed) != 0 || count(running) != 1 || count(complete.ID) != 1 {
		t.Fatalf("chunks left: crashed %d, running %d, complete %d", count(crashed), count(running), count(complete.ID))
	}
}
