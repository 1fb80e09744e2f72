package stack

import (
	"testing"

	"github.com/parley-chat/parley/internal/testenv"
)

// StartCluster runs n nodes on one MongoDB-wire database (FerretDB) and one
// private Redis, as a cluster: the Socket.IO Redis adapter, presence across
// nodes, cache notices. The Redis is returned for tests that stop it.
func StartCluster(t *testing.T, n int) ([]*Server, *testenv.Redis) {
	t.Helper()
	redis := testenv.StartRedis(t)
	db := testenv.MongoDatabase(t)
	nodes := make([]*Server, n)
	for i := range nodes {
		nodes[i] = start(t, "mongo", redis.URL, db, true)
	}
	return nodes, redis
}
