// Package storetest is the contract every store.Store engine must meet. Each
// engine's own tests call Run; the suite talks to the engine only through the
// store interfaces, so it holds the SQLite and MongoDB engines to exactly the
// same behaviour.
package storetest

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/store"
)

// Run runs the whole contract against an engine. open must return a fresh,
// empty store each time it is called: once per subtest, or once per group of
// read-only table cases. It should register its own cleanup (t.Cleanup) to
// close the store and drop whatever backs it.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("Users", func(t *testing.T) { testUsers(t, open) })
	t.Run("Sessions", func(t *testing.T) { testSessions(t, open) })
	t.Run("Chats", func(t *testing.T) { testChats(t, open) })
	t.Run("Messages", func(t *testing.T) { testMessages(t, open) })
	t.Run("Files", func(t *testing.T) { testFiles(t, open) })
	t.Run("Concurrency", func(t *testing.T) { testConcurrency(t, open) })
}

// base is deliberately neither UTC nor on a millisecond: engines must store
// the instant at millisecond precision and hand it back in UTC.
var base = time.Date(2024, 3, 10, 12, 30, 45, 123456789, time.FixedZone("IST", 5*3600+1800))

func at(d time.Duration) time.Time { return base.Add(d) }

// ms is what an engine is expected to hand back for t: truncated to the
// millisecond (as MongoDB's BSON datetime does) and in UTC.
func ms(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.UnixMilli(t.UnixMilli()).UTC()
}

func checkTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	want = ms(want)
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
		return
	}
	if want.IsZero() {
		if !got.IsZero() {
			t.Errorf("%s = %v, want the zero time", what, got)
		}
		return
	}
	if got.Location() != time.UTC {
		t.Errorf("%s location = %v, want UTC", what, got.Location())
	}
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("%s: err = %v, want store.ErrNotFound", what, err)
	}
}

func wantConflict(t *testing.T, what string, err error, on store.Conflict) {
	t.Helper()
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("%s: err = %v, want store.ErrConflict", what, err)
		return
	}
	if got := store.ConflictOn(err); got != on {
		t.Errorf("%s: conflict on %q, want %q", what, got, on)
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func checkUser(t *testing.T, what string, got *store.User, want store.User) {
	t.Helper()
	if got == nil {
		t.Errorf("%s = nil, want %+v", what, want)
		return
	}
	g := *got
	checkTime(t, what+".LastSeenAt", g.LastSeenAt, want.LastSeenAt)
	checkTime(t, what+".CreatedAt", g.CreatedAt, want.CreatedAt)
	g.LastSeenAt, g.CreatedAt = time.Time{}, time.Time{}
	want.LastSeenAt, want.CreatedAt = time.Time{}, time.Time{}
	if !reflect.DeepEqual(g, want) {
		t.Errorf("%s = %+v, want %+v", what, g, want)
	}
}

func checkSession(t *testing.T, what string, got *store.Session, want store.Session) {
	t.Helper()
	if got == nil {
		t.Errorf("%s = nil, want %+v", what, want)
		return
	}
	g := *got
	checkTime(t, what+".CreatedAt", g.CreatedAt, want.CreatedAt)
	checkTime(t, what+".LastSeenAt", g.LastSeenAt, want.LastSeenAt)
	checkTime(t, what+".ExpiresAt", g.ExpiresAt, want.ExpiresAt)
	g.CreatedAt, g.LastSeenAt, g.ExpiresAt = time.Time{}, time.Time{}, time.Time{}
	want.CreatedAt, want.LastSeenAt, want.ExpiresAt = time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(g, want) {
		t.Errorf("%s = %+v, want %+v", what, g, want)
	}
}

// checkChat compares members as a set: member order is not part of the
// contract.
func checkChat(t *testing.T, what string, got *store.Chat, want store.Chat) {
	t.Helper()
	if got == nil {
		t.Errorf("%s = nil, want %+v", what, want)
		return
	}
	g := *got
	checkTime(t, what+".CreatedAt", g.CreatedAt, want.CreatedAt)
	g.CreatedAt, want.CreatedAt = time.Time{}, time.Time{}
	g.Members, want.Members = sortedMembers(g.Members), sortedMembers(want.Members)
	if !reflect.DeepEqual(g, want) {
		t.Errorf("%s = %+v, want %+v", what, g, want)
	}
}

func sortedMembers(ms []store.Member) []store.Member {
	out := slices.Clone(ms)
	if out == nil {
		out = []store.Member{}
	}
	slices.SortFunc(out, func(a, b store.Member) int { return strings.Compare(a.UserID, b.UserID) })
	return out
}

// checkMessage insists on a non-nil Attachments slice: engines normalise "no
// attachments" to []store.Attachment{} so callers never branch on nil.
func checkMessage(t *testing.T, what string, got *store.Message, want store.Message) {
	t.Helper()
	if got == nil {
		t.Errorf("%s = nil, want %+v", what, want)
		return
	}
	g := *got
	checkTime(t, what+".CreatedAt", g.CreatedAt, want.CreatedAt)
	g.CreatedAt, want.CreatedAt = time.Time{}, time.Time{}
	if len(want.Attachments) == 0 {
		want.Attachments = []store.Attachment{}
	}
	if g.Attachments == nil {
		t.Errorf("%s.Attachments = nil, want a non-nil empty slice", what)
		g.Attachments = []store.Attachment{}
	}
	if !reflect.DeepEqual(g, want) {
		t.Errorf("%s = %+v, want %+v", what, g, want)
	}
}

func checkFile(t *testing.T, what string, got *store.File, want store.File) {
	t.Helper()
	if got == nil {
		t.Errorf("%s = nil, want %+v", what, want)
		return
	}
	g := *got
	checkTime(t, what+".CreatedAt", g.CreatedAt, want.CreatedAt)
	g.CreatedAt, want.CreatedAt = time.Time{}, time.Time{}
	if !reflect.DeepEqual(g, want) {
		t.Errorf("%s = %+v, want %+v", what, g, want)
	}
}

func ids[T any](xs []T, id func(T) string) []string {
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		out = append(out, id(x))
	}
	return out
}

func sortedIDs[T any](xs []T, id func(T) string) []string {
	out := ids(xs, id)
	slices.Sort(out)
	return out
}

func sorted(xs ...string) []string {
	out := slices.Clone(xs)
	if out == nil {
		out = []string{}
	}
	slices.Sort(out)
	return out
}
