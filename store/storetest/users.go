package storetest

import (
	"testing"
	"time"

	"github.com/parley-chat/parley/store"
)

func newUser(username, displayName string) store.User {
	return store.User{
		ID:           store.NewID(),
		Username:     username,
		Email:        username + "@example.com",
		DisplayName:  displayName,
		PasswordHash: "hash-of-" + username,
		PictureURL:   "https://pictures.example/" + username + ".png",
		CreatedAt:    at(0),
	}
}

func createUser(t *testing.T, s store.Store, u store.User) store.User {
	t.Helper()
	must(t, "CreateUser "+u.Username, s.CreateUser(t.Context(), &u))
	return u
}

func testUsers(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("CreateAndGet", func(t *testing.T) {
		s := open(t)
		u := newUser("alice", "Alice Liddell")
		u.AvatarFileID = store.NewID()
		createUser(t, s, u)

		got, err := s.UserByID(t.Context(), u.ID)
		must(t, "UserByID", err)
		checkUser(t, "UserByID", got, u)
		if !got.LastSeenAt.IsZero() {
			t.Errorf("LastSeenAt of a user never seen = %v, want zero", got.LastSeenAt)
		}

		_, err = s.UserByID(t.Context(), store.NewID())
		wantNotFound(t, "UserByID(unknown)", err)
	})

	t.Run("Conflict", func(t *testing.T) {
		cases := []struct {
			name   string
			mutate func(u *store.User)
			on     store.Conflict
		}{
			{"username", func(u *store.User) { u.Email = "other@example.com" }, store.ConflictUsername},
			{"email", func(u *store.User) { u.Username = "other" }, store.ConflictEmail},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := open(t)
				first := createUser(t, s, newUser("alice", "Alice"))

				dup := newUser("alice", "Alice Two")
				tc.mutate(&dup)
				wantConflict(t, "CreateUser(duplicate "+tc.name+")", s.CreateUser(t.Context(), &dup), tc.on)

				_, err := s.UserByID(t.Context(), dup.ID)
				wantNotFound(t, "UserByID(refused user)", err)
				got, err := s.UserByID(t.Context(), first.ID)
				must(t, "UserByID(first)", err)
				checkUser(t, "first user after refused duplicate", got, first)
			})
		}
	})

	t.Run("UserByLogin", func(t *testing.T) {
		s := open(t)
		alice := createUser(t, s, newUser("alice", "Alice"))
		bob := createUser(t, s, newUser("bob", "Bob"))
		cases := []struct {
			login string
			want  *store.User
		}{
			{"alice", &alice},
			{"alice@example.com", &alice},
			{"bob", &bob},
			{"bob@example.com", &bob},
			{"carol", nil},
			{"carol@example.com", nil},
			{"alic", nil},
		}
		for _, tc := range cases {
			t.Run(tc.login, func(t *testing.T) {
				got, err := s.UserByLogin(t.Context(), tc.login)
				if tc.want == nil {
					wantNotFound(t, "UserByLogin", err)
					return
				}
				must(t, "UserByLogin", err)
				checkUser(t, "UserByLogin", got, *tc.want)
			})
		}
	})

	t.Run("UsersByIDs", func(t *testing.T) {
		s := open(t)
		a := createUser(t, s, newUser("alice", "Alice"))
		b := createUser(t, s, newUser("bob", "Bob"))
		c := createUser(t, s, newUser("carol", "Carol"))
		unknown := store.NewID()
		cases := []struct {
			name string
			ids  []string
			want []string
		}{
			{"none", nil, nil},
			{"one", []string{b.ID}, []string{b.ID}},
			{"some with unknown", []string{a.ID, unknown, c.ID}, []string{a.ID, c.ID}},
			{"all", []string{c.ID, b.ID, a.ID}, []string{a.ID, b.ID, c.ID}},
			{"only unknown", []string{unknown}, nil},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.UsersByIDs(t.Context(), tc.ids)
				must(t, "UsersByIDs", err)
				if g, w := sortedIDs(got, func(u store.User) string { return u.ID }), sorted(tc.want...); !slicesEqual(g, w) {
					t.Errorf("UsersByIDs ids = %v, want %v", g, w)
				}
				for _, u := range got {
					if u.ID == a.ID {
						checkUser(t, "UsersByIDs[alice]", &u, a)
					}
				}
			})
		}
	})

	t.Run("SearchUsers", func(t *testing.T) {
		s := open(t)
		users := map[string]store.User{}
		for _, u := range []struct{ username, display string }{
			{"alice", "Alice Liddell"},
			{"albert", "Bert"},
			{"bob", "Alfred Bobson"}, // found by display name only
			{"carol", "carol"},
			{"al_fa", "Fa"},        // "_" must not act as a wildcard
			{"zed", "Émile Zola"},  // display name lower-cased beyond ASCII
			{"dave", "DAVE Smith"}, // display name stored upper-case
			{"zoë", "Z"},           // non-ASCII right after the prefix
		} {
			users[u.username] = createUser(t, s, newUser(u.username, u.display))
		}
		cases := []struct {
			prefix string
			limit  int
			want   []string // usernames, in order
		}{
			{"al", 10, []string{"al_fa", "albert", "alice", "bob"}},
			{"al", 2, []string{"al_fa", "albert"}},
			{"al", 4, []string{"al_fa", "albert", "alice", "bob"}},
			{"al_", 10, []string{"al_fa"}},
			{"a%", 10, nil},
			{"a.", 10, nil},
			{"a*", 10, nil},
			{"b", 10, []string{"albert", "bob"}},
			{"bo", 10, []string{"bob"}},
			{"alice liddell", 10, []string{"alice"}},
			{"émi", 10, []string{"zed"}},
			{"zo", 10, []string{"zoë"}},
			{"zoë", 10, []string{"zoë"}},
			{"z", 10, []string{"zed", "zoë"}},
			{"dave s", 10, []string{"dave"}},
			{"c", 1, []string{"carol"}},
			{"x", 10, nil},
			{"alicex", 10, nil},
		}
		for _, tc := range cases {
			t.Run(tc.prefix, func(t *testing.T) {
				got, err := s.SearchUsers(t.Context(), tc.prefix, tc.limit)
				must(t, "SearchUsers", err)
				names := ids(got, func(u store.User) string { return u.Username })
				if !slicesEqual(names, tc.want) {
					t.Fatalf("SearchUsers(%q, %d) = %v, want %v", tc.prefix, tc.limit, names, tc.want)
				}
				for i := range got {
					checkUser(t, "SearchUsers result", &got[i], users[got[i].Username])
				}
			})
		}
	})

	t.Run("UsersContaining", func(t *testing.T) {
		s := open(t)
		users := map[string]store.User{}
		for _, u := range []struct{ username, display string }{
			{"alice", "Alice Liddell"},
			{"bob", "Bobby Tables"},
			{"carol", "Émile"},
			{"dot", "a.b"},
		} {
			users[u.username] = createUser(t, s, newUser(u.username, u.display))
		}
		cases := []struct {
			sub   string
			limit int
			want  []string
		}{
			{"lid", 10, []string{"alice"}}, // inside the display name
			{"example", 10, []string{"alice", "bob", "carol", "dot"}},
			{"example", 2, []string{"alice", "bob"}},
			{"bob@", 10, []string{"bob"}},                       // inside the email
			{"mile", 10, []string{"carol"}},                     // beyond ASCII
			{".", 10, []string{"alice", "bob", "carol", "dot"}}, // every email has a dot
			{"a.b", 10, []string{"dot"}},                        // "." is literal
			{"%", 10, nil},
			{"zz", 10, nil},
		}
		for _, tc := range cases {
			t.Run(tc.sub, func(t *testing.T) {
				got, err := s.UsersContaining(t.Context(), tc.sub, tc.limit)
				must(t, "UsersContaining", err)
				names := ids(got, func(u store.User) string { return u.Username })
				if !slicesEqual(names, tc.want) {
					t.Fatalf("UsersContaining(%q, %d) = %v, want %v", tc.sub, tc.limit, names, tc.want)
				}
				for i := range got {
					checkUser(t, "UsersContaining result", &got[i], users[got[i].Username])
				}
			})
		}
	})

	t.Run("UpdateUser", func(t *testing.T) {
		str := func(s string) *string { return &s }
		avatar := store.NewID()
		cases := []struct {
			name  string
			upd   store.UserUpdate
			apply func(u *store.User)
		}{
			{"nothing", store.UserUpdate{}, func(*store.User) {}},
			{"display name", store.UserUpdate{DisplayName: str("Queen of Hearts")},
				func(u *store.User) { u.DisplayName = "Queen of Hearts" }},
			{"password hash", store.UserUpdate{PasswordHash: str("new-hash")},
				func(u *store.User) { u.PasswordHash = "new-hash" }},
			{"set avatar", store.UserUpdate{AvatarFileID: str(avatar)},
				func(u *store.User) { u.AvatarFileID = avatar }},
			{"clear avatar", store.UserUpdate{AvatarFileID: str("")},
				func(u *store.User) { u.AvatarFileID = "" }},
			{"all", store.UserUpdate{DisplayName: str("Q"), PasswordHash: str("h2"), AvatarFileID: str("")},
				func(u *store.User) { u.DisplayName, u.PasswordHash, u.AvatarFileID = "Q", "h2", "" }},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := open(t)
				u := newUser("alice", "Alice Liddell")
				u.AvatarFileID = store.NewID()
				u.LastSeenAt = at(time.Minute)
				createUser(t, s, u)
				other := createUser(t, s, newUser("bob", "Bob"))

				want := u
				tc.apply(&want)
				got, err := s.UpdateUser(t.Context(), u.ID, tc.upd)
				must(t, "UpdateUser", err)
				checkUser(t, "UpdateUser result", got, want)
				got, err = s.UserByID(t.Context(), u.ID)
				must(t, "UserByID", err)
				checkUser(t, "UserByID after UpdateUser", got, want)
				got, err = s.UserByID(t.Context(), other.ID)
				must(t, "UserByID(other)", err)
				checkUser(t, "other user after UpdateUser", got, other)
			})
		}

		t.Run("search follows display name", func(t *testing.T) {
			s := open(t)
			u := createUser(t, s, newUser("alice", "Alice Liddell"))
			_, err := s.UpdateUser(t.Context(), u.ID, store.UserUpdate{DisplayName: str("Queen Of Hearts")})
			must(t, "UpdateUser", err)
			for prefix, want := range map[string][]string{"queen of": {"alice"}, "alice l": nil} {
				got, err := s.SearchUsers(t.Context(), prefix, 10)
				must(t, "SearchUsers", err)
				if names := ids(got, func(u store.User) string { return u.Username }); !slicesEqual(names, want) {
					t.Errorf("SearchUsers(%q) after rename = %v, want %v", prefix, names, want)
				}
			}
		})

		t.Run("unknown", func(t *testing.T) {
			s := open(t)
			_, err := s.UpdateUser(t.Context(), store.NewID(), store.UserUpdate{DisplayName: str("x")})
			wantNotFound(t, "UpdateUser(unknown)", err)
		})
	})

	t.Run("SetLastSeen", func(t *testing.T) {
		s := open(t)
		u := createUser(t, s, newUser("alice", "Alice"))
		other := createUser(t, s, newUser("bob", "Bob"))
		for _, seen := range []time.Duration{time.Hour, 2 * time.Hour} {
			must(t, "SetLastSeen", s.SetLastSeen(t.Context(), u.ID, at(seen)))
			want := u
			want.LastSeenAt = at(seen)
			got, err := s.UserByID(t.Context(), u.ID)
			must(t, "UserByID", err)
			checkUser(t, "after SetLastSeen", got, want)
		}
		got, err := s.UserByID(t.Context(), other.ID)
		must(t, "UserByID(other)", err)
		checkUser(t, "other user after SetLastSeen", got, other)

		wantNotFound(t, "SetLastSeen(unknown)", s.SetLastSeen(t.Context(), store.NewID(), at(0)))
	})
}

// slicesEqual treats nil and empty as equal: engines may return either for
// "no results".
func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
