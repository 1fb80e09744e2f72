package mongo

import (
	"context"
	"testing"

	"github.com/parley-chat/parley/internal/testenv"
)

// Start-up creates indexes every time: a second start on the same database
// must find them in place and carry on.
func TestReopenKeepsIndexes(t *testing.T) {
	ctx := context.Background()
	uri, db := testenv.MongoURI(t), testenv.MongoDatabase(t)
	for i := 0; i < 2; i++ {
		st, err := Open(ctx, uri, db)
		if err != nil {
			t.Fatalf("open #%d: %v", i+1, err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
