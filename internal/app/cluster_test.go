package app

import (
	"maps"
	"testing"

	"github.com/parley-chat/parley/internal/testenv"
)

// The chat writer hands each commit's seqs over without waiting for Redis:
// commits made while a publish is in flight merge into the next notice,
// keeping each chat's highest seq.
func TestSeqNoticesMergeWhilePublishing(t *testing.T) {
	n := newSeqNotices()
	published := make(chan map[string]int64, 4)
	release := make(chan struct{})
	n.start(func(last map[string]int64) { published <- last; <-release })
	defer n.stop()

	n.add(map[string]int64{"c1": 3})
	if got := testenv.Receive(t, published, "first notice"); !maps.Equal(got, map[string]int64{"c1": 3}) {
		t.Fatalf("first notice %v", got)
	}
	// The first publish is in flight (Redis slow): these return at once.
	n.add(map[string]int64{"c1": 5, "c2": 1})
	n.add(map[string]int64{"c1": 4, "c2": 2})
	n.add(map[string]int64{"c3": 7})
	close(release)
	if got, want := testenv.Receive(t, published, "merged notice"), map[string]int64{"c1": 5, "c2": 2, "c3": 7}; !maps.Equal(got, want) {
		t.Fatalf("second notice %v, want the three commits merged: %v", got, want)
	}
}
