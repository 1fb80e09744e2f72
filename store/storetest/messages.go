package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/parley-chat/parley/store"
)

func newMessage(chatID, senderID string, seq int64, clientMsgID string) *store.Message {
	return &store.Message{
		ID:          store.NewID(),
		ChatID:      chatID,
		Seq:         seq,
		SenderID:    senderID,
		Text:        fmt.Sprintf("message %d", seq),
		ClientMsgID: clientMsgID,
		CreatedAt:   at(time.Duration(seq) * time.Second),
	}
}

func insert(t *testing.T, s store.Store, msgs ...*store.Message) {
	t.Helper()
	n, err := s.InsertMessages(t.Context(), msgs)
	if err != nil || n != len(msgs) {
		t.Fatalf("InsertMessages = %d, %v; want %d, nil", n, err, len(msgs))
	}
}

// history returns every message of the chat in seq order.
func history(t *testing.T, s store.Store, chatID string) []store.Message {
	t.Helper()
	msgs, more, err := s.History(t.Context(), chatID, 0, 0, 1000)
	must(t, "History", err)
	if more {
		t.Fatalf("History reports more than 1000 messages")
	}
	return msgs
}

func seqs(msgs []store.Message) []int64 {
	out := make([]int64, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, m.Seq)
	}
	return out
}

func seqRange(from, to int64) []int64 {
	var out []int64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func int64sEqual(a, b []int64) bool {
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

// twoChats is the usual message fixture: two group chats shared by u1 and u2.
func twoChats(t *testing.T, s store.Store) (a, b, u1, u2 string) {
	u1, u2 = store.NewID(), store.NewID()
	a = createChat(t, s, newGroup("a", u1, u2)).ID
	b = createChat(t, s, newGroup("b", u1, u2)).ID
	return a, b, u1, u2
}

func testMessages(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("RoundTrip", func(t *testing.T) {
		s := open(t)
		a, _, u1, u2 := twoChats(t, s)
		f1, f2 := store.NewID(), store.NewID()

		full := newMessage(a, u1, 1, "client-1")
		full.Attachments = []store.Attachment{
			{ID: f2, Name: "zebra.png", Size: 1234567, ContentType: "image/png"},
			{ID: f1, Name: "notes.txt", Size: 0, ContentType: "text/plain; charset=utf-8"},
		}
		onlyFiles := newMessage(a, u2, 2, "")
		onlyFiles.Text = ""
		onlyFiles.Attachments = []store.Attachment{{ID: f1, Name: "a", Size: 1, ContentType: "application/octet-stream"}}
		nilAttachments := newMessage(a, u1, 3, "client-3")
		emptyAttachments := newMessage(a, u2, 4, "")
		emptyAttachments.Attachments = []store.Attachment{}
		unicode := newMessage(a, u1, 5, "🙂-id")
		unicode.Text = "héllo\n\"wörld\" 🙂\tend"
		want := []*store.Message{full, onlyFiles, nilAttachments, emptyAttachments, unicode}
		insert(t, s, want...)

		got := history(t, s, a)
		if len(got) != len(want) {
			t.Fatalf("History returned %d messages, want %d", len(got), len(want))
		}
		for i := range want {
			checkMessage(t, fmt.Sprintf("History[%d]", i), &got[i], *want[i])
		}
		last, err := s.LastMessage(t.Context(), a)
		must(t, "LastMessage", err)
		checkMessage(t, "LastMessage", last, *unicode)
		byClient, err := s.MessageByClientID(t.Context(), a, u1, "client-1")
		must(t, "MessageByClientID", err)
		checkMessage(t, "MessageByClientID", byClient, *full)
	})

	t.Run("InsertMessages", func(t *testing.T) {
		type spec struct {
			chat   string // "a" or "b"
			seq    int64
			sender string // "u1" or "u2"
			cid    string
		}
		cases := []struct {
			name     string
			existing []spec
			batch    []spec
			wantN    int
			wantOn   store.Conflict // "" for no error
		}{
			{"empty batch", nil, nil, 0, ""},
			{"all new", nil,
				[]spec{{"a", 1, "u1", "c1"}, {"a", 2, "u2", "c1"}, {"a", 3, "u1", ""}}, 3, ""},
			{"seq taken mid-batch", []spec{{"a", 1, "u1", ""}, {"a", 2, "u1", ""}, {"a", 3, "u1", ""}},
				[]spec{{"a", 4, "u1", ""}, {"a", 5, "u2", ""}, {"a", 3, "u2", ""}, {"a", 6, "u1", ""}}, 2, store.ConflictSeq},
			{"seq taken at first", []spec{{"a", 1, "u1", ""}},
				[]spec{{"a", 1, "u2", "x"}, {"a", 2, "u2", "y"}}, 0, store.ConflictSeq},
			{"seq repeated within batch", nil,
				[]spec{{"a", 1, "u1", ""}, {"a", 2, "u1", ""}, {"a", 2, "u2", ""}, {"a", 3, "u1", ""}}, 2, store.ConflictSeq},
			{"seq taken in other chat", []spec{{"b", 1, "u1", ""}},
				[]spec{{"a", 1, "u1", ""}}, 1, ""},
			{"clientMsgId taken", []spec{{"a", 1, "u1", "c1"}},
				[]spec{{"a", 2, "u1", "c2"}, {"a", 3, "u1", "c1"}, {"a", 4, "u1", "c4"}}, 1, store.ConflictClientMsgID},
			{"clientMsgId repeated within batch", nil,
				[]spec{{"a", 1, "u1", "c1"}, {"a", 2, "u1", "c1"}}, 1, store.ConflictClientMsgID},
			{"clientMsgId of other sender", []spec{{"a", 1, "u1", "c1"}},
				[]spec{{"a", 2, "u2", "c1"}}, 1, ""},
			{"clientMsgId in other chat", []spec{{"b", 1, "u1", "c1"}},
				[]spec{{"a", 1, "u1", "c1"}}, 1, ""},
			{"empty clientMsgId never conflicts", []spec{{"a", 1, "u1", ""}, {"a", 2, "u1", ""}},
				[]spec{{"a", 3, "u1", ""}, {"a", 4, "u1", ""}, {"a", 5, "u1", ""}, {"a", 6, "u2", ""}}, 4, ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := open(t)
				a, b, u1, u2 := twoChats(t, s)
				mk := func(sp spec) *store.Message {
					chat, sender := a, u1
					if sp.chat == "b" {
						chat = b
					}
					if sp.sender == "u2" {
						sender = u2
					}
					return newMessage(chat, sender, sp.seq, sp.cid)
				}
				// want maps chat -> seq -> the message that must hold it.
				want := map[string]map[int64]*store.Message{a: {}, b: {}}
				var existing []*store.Message
				for _, sp := range tc.existing {
					m := mk(sp)
					existing = append(existing, m)
					want[m.ChatID][m.Seq] = m
				}
				if len(existing) > 0 {
					insert(t, s, existing...)
				}
				var batch []*store.Message
				for _, sp := range tc.batch {
					batch = append(batch, mk(sp))
				}

				n, err := s.InsertMessages(t.Context(), batch)
				if n != tc.wantN {
					t.Errorf("InsertMessages n = %d, want %d (err %v)", n, tc.wantN, err)
				}
				if tc.wantOn == "" {
					if err != nil {
						t.Errorf("InsertMessages err = %v, want nil", err)
					}
				} else {
					wantConflict(t, "InsertMessages", err, tc.wantOn)
				}
				for _, m := range batch[:min(tc.wantN, len(batch))] {
					want[m.ChatID][m.Seq] = m
				}

				for _, chat := range []string{a, b} {
					got := history(t, s, chat)
					if len(got) != len(want[chat]) {
						t.Errorf("chat holds seqs %v, want %d messages", seqs(got), len(want[chat]))
					}
					for i := range got {
						w, ok := want[chat][got[i].Seq]
						if !ok {
							t.Errorf("unexpected message stored at seq %d: %+v", got[i].Seq, got[i])
							continue
						}
						checkMessage(t, fmt.Sprintf("message at seq %d", got[i].Seq), &got[i], *w)
					}
				}
			})
		}
	})

	t.Run("MessageByClientID", func(t *testing.T) {
		s := open(t)
		a, b, u1, u2 := twoChats(t, s)
		m1 := newMessage(a, u1, 1, "c1")
		m2 := newMessage(a, u2, 2, "c1")
		insert(t, s, m1, m2, newMessage(a, u1, 3, ""))
		cases := []struct {
			name              string
			chat, sender, cid string
			want              *store.Message
		}{
			{"own", a, u1, "c1", m1},
			{"other sender same id", a, u2, "c1", m2},
			{"unknown id", a, u1, "c9", nil},
			{"other chat", b, u1, "c1", nil},
			{"unknown sender", a, store.NewID(), "c1", nil},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.MessageByClientID(t.Context(), tc.chat, tc.sender, tc.cid)
				if tc.want == nil {
					wantNotFound(t, "MessageByClientID", err)
					return
				}
				must(t, "MessageByClientID", err)
				checkMessage(t, "MessageByClientID", got, *tc.want)
			})
		}
	})

	t.Run("LastSeqAndLastMessage", func(t *testing.T) {
		s := open(t)
		a, b, u1, _ := twoChats(t, s)
		for _, chat := range []string{a, b} {
			last, err := s.LastSeq(t.Context(), chat)
			must(t, "LastSeq(empty)", err)
			if last != 0 {
				t.Errorf("LastSeq(empty) = %d, want 0", last)
			}
			_, err = s.LastMessage(t.Context(), chat)
			wantNotFound(t, "LastMessage(empty)", err)
		}

		// Inserted out of seq order: "last" means highest seq, not newest row.
		m3 := newMessage(a, u1, 3, "")
		insert(t, s, newMessage(a, u1, 1, ""), m3, newMessage(a, u1, 2, ""))
		last, err := s.LastSeq(t.Context(), a)
		must(t, "LastSeq", err)
		if last != 3 {
			t.Errorf("LastSeq = %d, want 3", last)
		}
		got, err := s.LastMessage(t.Context(), a)
		must(t, "LastMessage", err)
		checkMessage(t, "LastMessage", got, *m3)

		last, err = s.LastSeq(t.Context(), b)
		must(t, "LastSeq(other chat)", err)
		if last != 0 {
			t.Errorf("LastSeq(other chat) = %d, want 0", last)
		}
		_, err = s.LastMessage(t.Context(), b)
		wantNotFound(t, "LastMessage(other chat)", err)
	})

	t.Run("History", func(t *testing.T) {
		s := open(t)
		a, b, u1, u2 := twoChats(t, s)
		empty := createChat(t, s, newGroup("empty", u1)).ID
		// Interleave a second chat so pages cannot pass by ignoring chatId.
		for seq := int64(1); seq <= 10; seq++ {
			insert(t, s, newMessage(a, u1, seq, ""), newMessage(b, u2, seq, ""))
		}
		insert(t, s, newMessage(b, u2, 11, ""), newMessage(b, u2, 12, ""))

		cases := []struct {
			name          string
			chat          string
			before, after int64
			limit         int
			want          []int64
			wantMore      bool
		}{
			{"newest page", a, 0, 0, 3, seqRange(8, 10), true},
			{"newest page one short of all", a, 0, 0, 9, seqRange(2, 10), true},
			{"newest page exactly all", a, 0, 0, 10, seqRange(1, 10), false},
			{"newest page larger than all", a, 0, 0, 50, seqRange(1, 10), false},
			{"newest page limit 1", a, 0, 0, 1, []int64{10}, true},
			{"before middle", a, 5, 0, 3, seqRange(2, 4), true},
			{"before reaching start exactly", a, 4, 0, 3, seqRange(1, 3), false},
			{"before reaching start short", a, 3, 0, 5, seqRange(1, 2), false},
			{"before first", a, 1, 0, 5, nil, false},
			{"before beyond end", a, 20, 0, 3, seqRange(8, 10), true},
			{"before last", a, 10, 0, 9, seqRange(1, 9), false},
			{"before last one short", a, 10, 0, 8, seqRange(2, 9), true},
			{"after middle", a, 0, 5, 3, seqRange(6, 8), true},
			{"after reaching end exactly", a, 0, 7, 3, seqRange(8, 10), false},
			{"after reaching end short", a, 0, 8, 5, seqRange(9, 10), false},
			{"after last", a, 0, 10, 5, nil, false},
			{"after beyond end", a, 0, 99, 5, nil, false},
			{"after first", a, 0, 1, 9, seqRange(2, 10), false},
			{"after first one short", a, 0, 1, 8, seqRange(2, 9), true},
			{"other chat newest", b, 0, 0, 4, seqRange(9, 12), true},
			{"empty chat", empty, 0, 0, 10, nil, false},
			{"empty chat before", empty, 5, 0, 10, nil, false},
			{"empty chat after", empty, 0, 5, 10, nil, false},
			{"unknown chat", store.NewID(), 0, 0, 10, nil, false},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got, more, err := s.History(t.Context(), tc.chat, tc.before, tc.after, tc.limit)
				must(t, "History", err)
				if g := seqs(got); !int64sEqual(g, tc.want) || more != tc.wantMore {
					t.Errorf("History(before=%d, after=%d, limit=%d) = %v, more=%v; want %v, more=%v",
						tc.before, tc.after, tc.limit, g, more, tc.want, tc.wantMore)
				}
				for _, m := range got {
					if m.ChatID != tc.chat {
						t.Errorf("History returned a message of chat %s", m.ChatID)
					}
				}
			})
		}
	})

	t.Run("CountUnread", func(t *testing.T) {
		s := open(t)
		a, b, u1, u2 := twoChats(t, s)
		u3 := store.NewID()
		insert(t, s,
			newMessage(a, u1, 1, ""), newMessage(a, u2, 2, ""), newMessage(a, u2, 3, ""),
			newMessage(a, u1, 4, ""), newMessage(a, u3, 5, ""),
			newMessage(b, u2, 1, ""), newMessage(b, u2, 2, ""),
		)
		cases := []struct {
			name  string
			chat  string
			user  string
			after int64
			want  int
		}{
			{"all but own", a, u1, 0, 3},
			{"all but own (other user)", a, u2, 0, 3},
			{"after a seq", a, u1, 3, 1},
			{"after own seq", a, u1, 4, 1},
			{"caught up", a, u1, 5, 0},
			{"beyond end", a, u1, 50, 0},
			{"never sent", a, u3, 0, 4},
			{"outsider", a, store.NewID(), 0, 5},
			{"other chat", b, u1, 0, 2},
			{"other chat own", b, u2, 0, 0},
			{"empty chat", store.NewID(), u1, 0, 0},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.CountUnread(t.Context(), tc.chat, tc.user, tc.after)
				must(t, "CountUnread", err)
				if got != tc.want {
					t.Errorf("CountUnread(after %d) = %d, want %d", tc.after, got, tc.want)
				}
			})
		}
	})

	t.Run("ChatsWithFile", func(t *testing.T) {
		s := open(t)
		a, b, u1, _ := twoChats(t, s)
		c := createChat(t, s, newGroup("c", u1)).ID
		f1, f2, f3 := store.NewID(), store.NewID(), store.NewID()
		m1 := newMessage(a, u1, 1, "")
		m1.Attachments = []store.Attachment{{ID: f1, Name: "one"}}
		m2 := newMessage(b, u1, 1, "")
		m2.Attachments = []store.Attachment{{ID: f3, Name: "three"}, {ID: f2, Name: "two"}, {ID: f1, Name: "one"}}
		m3 := newMessage(b, u1, 2, "")
		m3.Attachments = []store.Attachment{{ID: f1, Name: "one again"}}
		insert(t, s, m1, m2, m3, newMessage(c, u1, 1, ""))

		cases := []struct {
			name  string
			file  string
			limit int
			want  []string
		}{
			{"in two chats, each once", f1, 10, []string{a, b}},
			{"second attachment", f2, 10, []string{b}},
			{"limited", f1, 1, nil},
			{"unknown file", store.NewID(), 10, nil},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.ChatsWithFile(t.Context(), tc.file, tc.limit)
				must(t, "ChatsWithFile", err)
				if tc.name == "limited" {
					if len(got) != 1 || (got[0] != a && got[0] != b) {
						t.Errorf("ChatsWithFile(limit 1) = %v, want one of %v", got, []string{a, b})
					}
					return
				}
				slices.Sort(got)
				want := slices.Clone(tc.want)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("ChatsWithFile = %v, want %v", got, want)
				}
			})
		}
	})
}
