package mongo

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/parley-chat/parley/internal/testenv"
	"go.mongodb.org/mongo-driver/v2/bson"
	mdriver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func TestProbe(t *testing.T) {
	ctx := context.Background()
	c, err := mdriver.Connect(options.Client().ApplyURI(testenv.MongoURI(t)))
	if err != nil {
		t.Fatal(err)
	}
	db := c.Database(testenv.MongoDatabase(t))
	coll := db.Collection("m")
	_, err = coll.Indexes().CreateMany(ctx, []mdriver.IndexModel{
		{Keys: bson.D{{"chatId", 1}, {"seq", 1}}, Options: options.Index().SetUnique(true).SetName("chat_seq")},
		{Keys: bson.D{{"chatId", 1}, {"senderId", 1}, {"cid", 1}}, Options: options.Index().SetUnique(true).SetName("chat_cid")},
	})
	fmt.Println("createIndexes:", err)
	oid1, oid2 := bson.NewObjectID(), bson.NewObjectID()
	docs := []any{
		bson.D{{"_id", "a"}, {"chatId", "c"}, {"seq", 1}, {"senderId", "u"}, {"cid", oid1}},
		bson.D{{"_id", "b"}, {"chatId", "c"}, {"seq", 2}, {"senderId", "u"}, {"cid", oid2}},
		bson.D{{"_id", "x"}, {"chatId", "c"}, {"seq", 3}, {"senderId", "u"}, {"cid", oid1.Hex()}},
		bson.D{{"_id", "d"}, {"chatId", "c"}, {"seq", 2}, {"senderId", "u"}, {"cid", "z"}},
		bson.D{{"_id", "e"}, {"chatId", "c"}, {"seq", 5}, {"senderId", "u"}, {"cid", "q"}},
	}
	_, err = coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(true))
	fmt.Printf("insertMany: %T %v dup=%v\n", err, err, mdriver.IsDuplicateKeyError(err))
	var bwe mdriver.BulkWriteException
	if errors.As(err, &bwe) {
		for _, we := range bwe.WriteErrors {
			fmt.Printf("  idx=%d code=%d msg=%q\n", we.Index, we.Code, we.Message)
		}
	}
	n, _ := coll.CountDocuments(ctx, bson.D{})
	fmt.Println("count", n)
	_, err = coll.InsertOne(ctx, bson.D{{"_id", "a"}, {"chatId", "zz"}})
	fmt.Printf("insertOne dup id: %T %v dup=%v\n", err, err, mdriver.IsDuplicateKeyError(err))
	// upsert setOnInsert
	r, err := coll.UpdateOne(ctx, bson.D{{"_id", "a"}}, bson.D{{"$setOnInsert", bson.D{{"k", 1}}}}, options.UpdateOne().SetUpsert(true))
	fmt.Printf("upsert existing: %+v %v\n", r, err)
	// $max with filter
	r, err = coll.UpdateOne(ctx, bson.D{{"_id", "a"}, {"seq", bson.D{{"$lt", 10}}}}, bson.D{{"$max", bson.D{{"seq", int64(10)}}}})
	fmt.Printf("max: %+v %v\n", r, err)
	// unordered insertMany with dups
	_, err = coll.InsertMany(ctx, []any{bson.D{{"_id", "a"}}, bson.D{{"_id", "new1"}, {"chatId", "n"}}}, options.InsertMany().SetOrdered(false))
	fmt.Printf("unordered: %v\n", err)
	n, _ = coll.CountDocuments(ctx, bson.D{{"_id", "new1"}})
	fmt.Println("new1 count", n)
	// regex
	cur, err := coll.Find(ctx, bson.D{{"$or", bson.A{bson.D{{"cid", bson.D{{"$regex", "^z"}}}}, bson.D{{"_id", bson.D{{"$regex", "^b"}}}}}}})
	if err == nil {
		var out []bson.M
		err = cur.All(ctx, &out)
		fmt.Println("regex", out, err)
	} else {
		fmt.Println("regex err", err)
	}
	// multikey index
	_, err = db.Collection("m2").Indexes().CreateOne(ctx, mdriver.IndexModel{Keys: bson.D{{"attachments.id", 1}}})
	fmt.Println("multikey", err)
	_, err = db.Collection("m3").Indexes().CreateOne(ctx, mdriver.IndexModel{Keys: bson.D{{"metadata.kind", 1}, {"metadata.attached", 1}, {"metadata.createdAt", 1}}})
	fmt.Println("nested", err)
}
