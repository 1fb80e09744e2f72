package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/store"
)

func newGroup(name string, owner string, members ...string) store.Chat {
	c := store.Chat{ID: store.NewID(), Type: store.ChatGroup, Name: name, CreatedAt: at(time.Minute)}
	c.DirectKey = "group:" + c.ID
	c.Members = append(c.Members, store.Member{UserID: owner, Role: store.RoleOwner})
	for _, m := range members {
		c.Members = append(c.Members, store.Member{UserID: m, Role: store.RoleMember})
	}
	return c
}

func directKey(a, b string) string {
	pair := []string{a, b}
	slices.Sort(pair)
	return strings.Join(pair, ":")
}

func newDirect(a, b string) store.Chat {
	return store.Chat{
		ID:        store.NewID(),
		Type:      store.ChatDirect,
		DirectKey: directKey(a, b),
		Members: []store.Member{
			{UserID: a, Role: store.RoleMember},
			{UserID: b, Role: store.RoleMember},
		},
		CreatedAt: at(2 * time.Minute),
	}
}

func createChat(t *testing.T, s store.Store, c store.Chat) store.Chat {
	t.Helper()
	must(t, "CreateChat", s.CreateChat(t.Context(), &c))
	return c
}

func chatByID(t *testing.T, s store.Store, id string) *store.Chat {
	t.Helper()
	c, err := s.ChatByID(t.Context(), id)
	must(t, "ChatByID", err)
	return c
}

func chatID(c store.Chat) string { return c.ID }

func testChats(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("CreateGroup", func(t *testing.T) {
		s := open(t)
		u1, u2, u3 := store.NewID(), store.NewID(), store.NewID()
		c := newGroup("Tea party", u1, u2)
		c.Members = append(c.Members, store.Member{UserID: u3, Role: store.RoleAdmin, ReadSeq: 0})
		createChat(t, s, c)
		checkChat(t, "ChatByID", chatByID(t, s, c.ID), c)

		got, err := s.ChatByDirectKey(t.Context(), c.DirectKey)
		must(t, "ChatByDirectKey(group key)", err)
		checkChat(t, "ChatByDirectKey(group key)", got, c)

		_, err = s.ChatByID(t.Context(), store.NewID())
		wantNotFound(t, "ChatByID(unknown)", err)
	})

	t.Run("CreateDirect", func(t *testing.T) {
		s := open(t)
		a, b, c := store.NewID(), store.NewID(), store.NewID()
		ab := createChat(t, s, newDirect(a, b))
		checkChat(t, "ChatByID", chatByID(t, s, ab.ID), ab)

		got, err := s.ChatByDirectKey(t.Context(), directKey(b, a))
		must(t, "ChatByDirectKey", err)
		checkChat(t, "ChatByDirectKey", got, ab)

		_, err = s.ChatByDirectKey(t.Context(), directKey(a, c))
		wantNotFound(t, "ChatByDirectKey(unknown pair)", err)

		// The other member opening the same pair must be refused whole:
		// neither the chat nor its members may stay behind.
		dup := newDirect(b, a)
		wantConflict(t, "CreateChat(same pair)", s.CreateChat(t.Context(), &dup), store.ConflictDirectKey)
		_, err = s.ChatByID(t.Context(), dup.ID)
		wantNotFound(t, "ChatByID(refused chat)", err)
		for _, u := range []string{a, b} {
			chats, err := s.ChatsByMember(t.Context(), u)
			must(t, "ChatsByMember", err)
			if g := ids(chats, chatID); !slicesEqual(g, []string{ab.ID}) {
				t.Errorf("ChatsByMember after refused duplicate = %v, want [%s]", g, ab.ID)
			}
		}

		createChat(t, s, newDirect(a, c))
	})

	t.Run("ChatsByMember", func(t *testing.T) {
		s := open(t)
		u1, u2, u3, u4, u5 := store.NewID(), store.NewID(), store.NewID(), store.NewID(), store.NewID()
		g1 := createChat(t, s, newGroup("one", u1, u2, u3))
		d := createChat(t, s, newDirect(u1, u4))
		g2 := createChat(t, s, newGroup("two", u5, u2))
		all := map[string]store.Chat{g1.ID: g1, d.ID: d, g2.ID: g2}

		cases := []struct {
			name string
			user string
			want []string
		}{
			{"in group and direct", u1, []string{g1.ID, d.ID}},
			{"in two groups", u2, []string{g1.ID, g2.ID}},
			{"in one group", u3, []string{g1.ID}},
			{"in direct only", u4, []string{d.ID}},
			{"owner only", u5, []string{g2.ID}},
			{"in none", store.NewID(), nil},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.ChatsByMember(t.Context(), tc.user)
				must(t, "ChatsByMember", err)
				if g, w := sortedIDs(got, chatID), sorted(tc.want...); !slicesEqual(g, w) {
					t.Fatalf("ChatsByMember = %v, want %v", g, w)
				}
				for i := range got {
					checkChat(t, "ChatsByMember chat (with all members)", &got[i], all[got[i].ID])
				}
			})
		}
	})

	t.Run("RenameChat", func(t *testing.T) {
		s := open(t)
		c := createChat(t, s, newGroup("old", store.NewID()))
		other := createChat(t, s, newGroup("other", store.NewID()))
		must(t, "RenameChat", s.RenameChat(t.Context(), c.ID, "new"))
		c.Name = "new"
		checkChat(t, "renamed chat", chatByID(t, s, c.ID), c)
		checkChat(t, "other chat", chatByID(t, s, other.ID), other)

		wantNotFound(t, "RenameChat(unknown)", s.RenameChat(t.Context(), store.NewID(), "x"))
	})

	t.Run("AddMembers", func(t *testing.T) {
		s := open(t)
		owner, member, newcomer, admin := store.NewID(), store.NewID(), store.NewID(), store.NewID()
		c := createChat(t, s, newGroup("g", owner, member))
		_, err := s.SetReadSeq(t.Context(), c.ID, member, 4)
		must(t, "SetReadSeq", err)

		// Present members are left exactly as they are, whatever role or
		// read position the request carries for them.
		must(t, "AddMembers", s.AddMembers(t.Context(), c.ID, []store.Member{
			{UserID: member, Role: store.RoleAdmin, ReadSeq: 0},
			{UserID: owner, Role: store.RoleMember, ReadSeq: 9},
			{UserID: newcomer, Role: store.RoleMember},
			{UserID: admin, Role: store.RoleAdmin},
		}))
		want := c
		want.Members = []store.Member{
			{UserID: owner, Role: store.RoleOwner},
			{UserID: member, Role: store.RoleMember, ReadSeq: 4},
			{UserID: newcomer, Role: store.RoleMember},
			{UserID: admin, Role: store.RoleAdmin},
		}
		checkChat(t, "chat after AddMembers", chatByID(t, s, c.ID), want)

		must(t, "AddMembers(again)", s.AddMembers(t.Context(), c.ID, []store.Member{{UserID: newcomer, Role: store.RoleAdmin}}))
		must(t, "AddMembers(none)", s.AddMembers(t.Context(), c.ID, nil))
		checkChat(t, "chat after idempotent AddMembers", chatByID(t, s, c.ID), want)

		chats, err := s.ChatsByMember(t.Context(), newcomer)
		must(t, "ChatsByMember(newcomer)", err)
		if g := ids(chats, chatID); !slicesEqual(g, []string{c.ID}) {
			t.Errorf("ChatsByMember(newcomer) = %v, want [%s]", g, c.ID)
		}
	})

	t.Run("RemoveMember", func(t *testing.T) {
		s := open(t)
		owner, member, stranger := store.NewID(), store.NewID(), store.NewID()
		c := createChat(t, s, newGroup("g", owner, member))
		other := createChat(t, s, newGroup("other", member))

		must(t, "RemoveMember", s.RemoveMember(t.Context(), c.ID, member))
		want := c
		want.Members = c.Members[:1]
		checkChat(t, "chat after RemoveMember", chatByID(t, s, c.ID), want)
		checkChat(t, "other chat", chatByID(t, s, other.ID), other)

		chats, err := s.ChatsByMember(t.Context(), member)
		must(t, "ChatsByMember(removed)", err)
		if g := ids(chats, chatID); !slicesEqual(g, []string{other.ID}) {
			t.Errorf("ChatsByMember(removed) = %v, want [%s]", g, other.ID)
		}

		wantNotFound(t, "RemoveMember(again)", s.RemoveMember(t.Context(), c.ID, member))
		wantNotFound(t, "RemoveMember(stranger)", s.RemoveMember(t.Context(), c.ID, stranger))
		wantNotFound(t, "RemoveMember(unknown chat)", s.RemoveMember(t.Context(), store.NewID(), owner))
	})

	t.Run("SetReadSeq", func(t *testing.T) {
		s := open(t)
		owner, member := store.NewID(), store.NewID()
		c := createChat(t, s, newGroup("g", owner, member))
		steps := []struct {
			seq       int64
			wantMoved bool
			wantSeq   int64
		}{
			{5, true, 5},
			{3, false, 5},
			{5, false, 5},
			{0, false, 5},
			{9, true, 9},
			{10, true, 10},
		}
		for _, st := range steps {
			moved, err := s.SetReadSeq(t.Context(), c.ID, member, st.seq)
			must(t, "SetReadSeq", err)
			if moved != st.wantMoved {
				t.Errorf("SetReadSeq(%d) moved = %v, want %v", st.seq, moved, st.wantMoved)
			}
			want := c
			want.Members = []store.Member{
				{UserID: owner, Role: store.RoleOwner},
				{UserID: member, Role: store.RoleMember, ReadSeq: st.wantSeq},
			}
			checkChat(t, "chat after SetReadSeq", chatByID(t, s, c.ID), want)
		}
	})
}
