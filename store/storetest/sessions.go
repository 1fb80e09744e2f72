package storetest

import (
	"testing"
	"time"

	"github.com/parley-chat/parley/store"
)

func newSession(userID string, created time.Duration) store.Session {
	return store.Session{
		ID:         store.NewID(),
		UserID:     userID,
		UserAgent:  "parley-test/1.0",
		CreatedAt:  at(created),
		LastSeenAt: at(created),
		ExpiresAt:  at(created + 30*24*time.Hour),
	}
}

func createSession(t *testing.T, s store.Store, sess store.Session) store.Session {
	t.Helper()
	must(t, "CreateSession", s.CreateSession(t.Context(), &sess))
	return sess
}

func sessionID(s store.Session) string { return s.ID }

func testSessions(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("Purges", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		a := store.SessionPurge{SessionID: "a" + store.NewID()[1:], UserID: store.NewID(), ExpiresAt: at(time.Hour)}
		b := store.SessionPurge{SessionID: "b" + store.NewID()[1:], UserID: a.UserID, ExpiresAt: at(2 * time.Hour)}
		must(t, "AddSessionPurges", s.AddSessionPurges(ctx, []store.SessionPurge{a, b}))
		list := func(after string, limit int, pendingOnly bool) []string {
			t.Helper()
			got, err := s.SessionPurges(ctx, after, limit, pendingOnly)
			must(t, "SessionPurges", err)
			var ids []string
			for _, g := range got {
				want := a
				if g.SessionID == b.SessionID {
					want = b
				}
				if g.UserID != want.UserID || !g.ExpiresAt.Equal(want.ExpiresAt.Truncate(time.Millisecond)) {
					t.Fatalf("SessionPurges: %+v, want %+v", g, want)
				}
				ids = append(ids, g.SessionID)
			}
			return ids
		}
		if got := list("", 10, true); !slicesEqual(got, []string{a.SessionID, b.SessionID}) {
			t.Fatalf("pending purges = %v, want a, b in id order", got)
		}
		if got := list(a.SessionID, 10, false); !slicesEqual(got, []string{b.SessionID}) {
			t.Fatalf("purges after a = %v, want b", got)
		}
		if got := list("", 1, false); len(got) != 1 {
			t.Fatalf("limit 1 gave %v", got)
		}
		must(t, "FinishSessionPurges", s.FinishSessionPurges(ctx, []string{a.SessionID, store.NewID()}))
		if got := list("", 10, true); !slicesEqual(got, []string{b.SessionID}) {
			t.Fatalf("pending after finishing a = %v, want b", got)
		}
		if got := list("", 10, false); len(got) != 2 {
			t.Fatalf("a finished purge is kept until it expires: %v", got)
		}
		// Recording one again (a second node ending it) makes it pending.
		must(t, "AddSessionPurges(again)", s.AddSessionPurges(ctx, []store.SessionPurge{a}))
		if got := list("", 10, true); len(got) != 2 {
			t.Fatalf("re-added purge not pending: %v", got)
		}
		must(t, "DeleteExpiredSessionPurges", s.DeleteExpiredSessionPurges(ctx, at(90*time.Minute)))
		if got := list("", 10, false); !slicesEqual(got, []string{b.SessionID}) {
			t.Fatalf("after deleting those expired by 90m: %v, want b", got)
		}
	})

	t.Run("CreateAndGet", func(t *testing.T) {
		s := open(t)
		sess := createSession(t, s, newSession(store.NewID(), 0))
		got, err := s.SessionByID(t.Context(), sess.ID)
		must(t, "SessionByID", err)
		checkSession(t, "SessionByID", got, sess)

		_, err = s.SessionByID(t.Context(), store.NewID())
		wantNotFound(t, "SessionByID(unknown)", err)
	})

	t.Run("SessionsByUser", func(t *testing.T) {
		s := open(t)
		user, other := store.NewID(), store.NewID()
		// Created out of order so that insertion order cannot pass for age.
		s2 := createSession(t, s, newSession(user, 2*time.Second))
		s1 := createSession(t, s, newSession(user, 1*time.Second))
		s3 := createSession(t, s, newSession(user, 3*time.Second))
		o1 := createSession(t, s, newSession(other, 0))

		got, err := s.SessionsByUser(t.Context(), user)
		must(t, "SessionsByUser", err)
		if g, w := ids(got, sessionID), []string{s1.ID, s2.ID, s3.ID}; !slicesEqual(g, w) {
			t.Fatalf("SessionsByUser = %v, want oldest first %v", g, w)
		}
		checkSession(t, "SessionsByUser[0]", &got[0], s1)

		got, err = s.SessionsByUser(t.Context(), other)
		must(t, "SessionsByUser(other)", err)
		if g, w := ids(got, sessionID), []string{o1.ID}; !slicesEqual(g, w) {
			t.Errorf("SessionsByUser(other) = %v, want %v", g, w)
		}

		got, err = s.SessionsByUser(t.Context(), store.NewID())
		must(t, "SessionsByUser(unknown)", err)
		if len(got) != 0 {
			t.Errorf("SessionsByUser(unknown) = %v, want none", got)
		}
	})

	t.Run("DeleteSession", func(t *testing.T) {
		s := open(t)
		user := store.NewID()
		a := createSession(t, s, newSession(user, 0))
		b := createSession(t, s, newSession(user, time.Second))

		must(t, "DeleteSession", s.DeleteSession(t.Context(), a.ID))
		_, err := s.SessionByID(t.Context(), a.ID)
		wantNotFound(t, "SessionByID(deleted)", err)
		wantNotFound(t, "DeleteSession(again)", s.DeleteSession(t.Context(), a.ID))
		wantNotFound(t, "DeleteSession(unknown)", s.DeleteSession(t.Context(), store.NewID()))

		got, err := s.SessionByID(t.Context(), b.ID)
		must(t, "SessionByID(kept)", err)
		checkSession(t, "kept session", got, b)
	})

	t.Run("DeleteUserSessions", func(t *testing.T) {
		cases := []struct {
			name   string
			except func(mine []store.Session, theirs store.Session) string
			kept   func(mine []store.Session) []string // of mine
		}{
			{"all", func([]store.Session, store.Session) string { return "" },
				func([]store.Session) []string { return nil }},
			{"except current", func(m []store.Session, _ store.Session) string { return m[1].ID },
				func(m []store.Session) []string { return []string{m[1].ID} }},
			{"except unknown", func([]store.Session, store.Session) string { return store.NewID() },
				func([]store.Session) []string { return nil }},
			{"except someone else's", func(_ []store.Session, o store.Session) string { return o.ID },
				func([]store.Session) []string { return nil }},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := open(t)
				user, other := store.NewID(), store.NewID()
				mine := []store.Session{
					createSession(t, s, newSession(user, 0)),
					createSession(t, s, newSession(user, time.Second)),
					createSession(t, s, newSession(user, 2*time.Second)),
				}
				theirs := createSession(t, s, newSession(other, 0))

				kept := tc.kept(mine)
				var wantRemoved []string
				for _, m := range mine {
					if !contains(kept, m.ID) {
						wantRemoved = append(wantRemoved, m.ID)
					}
				}
				removed, err := s.DeleteUserSessions(t.Context(), user, tc.except(mine, theirs))
				must(t, "DeleteUserSessions", err)
				if g, w := sorted(removed...), sorted(wantRemoved...); !slicesEqual(g, w) {
					t.Errorf("DeleteUserSessions removed %v, want %v", g, w)
				}

				left, err := s.SessionsByUser(t.Context(), user)
				must(t, "SessionsByUser", err)
				if g := ids(left, sessionID); !slicesEqual(g, kept) {
					t.Errorf("sessions left = %v, want %v", g, kept)
				}
				for _, id := range wantRemoved {
					_, err := s.SessionByID(t.Context(), id)
					wantNotFound(t, "SessionByID(removed)", err)
				}
				got, err := s.SessionByID(t.Context(), theirs.ID)
				must(t, "SessionByID(other user's)", err)
				checkSession(t, "other user's session", got, theirs)
			})
		}

		t.Run("user without sessions", func(t *testing.T) {
			s := open(t)
			removed, err := s.DeleteUserSessions(t.Context(), store.NewID(), "")
			must(t, "DeleteUserSessions", err)
			if len(removed) != 0 {
				t.Errorf("DeleteUserSessions removed %v, want none", removed)
			}
		})
	})

	t.Run("TouchSession", func(t *testing.T) {
		s := open(t)
		sess := createSession(t, s, newSession(store.NewID(), 0))
		other := createSession(t, s, newSession(sess.UserID, time.Second))

		must(t, "TouchSession", s.TouchSession(t.Context(), sess.ID, at(time.Hour)))
		want := sess
		want.LastSeenAt = at(time.Hour)
		got, err := s.SessionByID(t.Context(), sess.ID)
		must(t, "SessionByID", err)
		checkSession(t, "touched session", got, want)
		got, err = s.SessionByID(t.Context(), other.ID)
		must(t, "SessionByID(other)", err)
		checkSession(t, "untouched session", got, other)

		wantNotFound(t, "TouchSession(unknown)", s.TouchSession(t.Context(), store.NewID(), at(0)))
	})
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
