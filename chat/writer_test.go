package chat

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/store"
	"github.com/parley-chat/parley/store/sqlite"
)

// startWriter runs a writer over a fresh SQLite store with one group chat.
func startWriter(t *testing.T) (*writer, *sqlite.Store, string, []string) {
	t.Helper()
	st := openStore(t)
	chatID, users := newChat(t, st)
	ctx, cancel := context.WithCancel(context.Background())
	w := newWriter(st, slog.New(slog.DiscardHandler))
	done := make(chan struct{})
	go func() { w.run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return w, st, chatID, users
}

// openStore opens a fresh SQLite store, closed when t ends (after what
// runs on it, cleanups running last first).
func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newChat stores a group chat of three users.
func newChat(t *testing.T, st *sqlite.Store) (string, []string) {
	t.Helper()
	users := []string{store.NewID(), store.NewID(), store.NewID()}
	chatID := store.NewID()
	c := &store.Chat{ID: chatID, Type: store.ChatGroup, Name: "w", DirectKey: "group:" + chatID, CreatedAt: time.Now()}
	for _, u := range users {
		c.Members = append(c.Members, store.Member{UserID: u, Role: store.RoleMember})
	}
	if err := st.CreateChat(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return chatID, users
}

func message(chatID, sender, clientID string) *store.Message {
	return &store.Message{ID: store.NewID(), ChatID: chatID, SenderID: sender, Text: "hi", ClientMsgID: clientID,
		Attachments: []store.Attachment{}, CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
}

// seqs reads back every seq stored in the chat.
func seqs(t *testing.T, st *sqlite.Store, chatID string) []int64 {
	t.Helper()
	msgs, _, err := st.History(context.Background(), chatID, 0, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Seq
	}
	return out
}

func wantGapless(t *testing.T, got []int64, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("%d messages stored, want %d: %v", len(got), n, got)
	}
	for i, s := range got {
		if s != int64(i+1) {
			t.Fatalf("seqs %v: want 1..%d without gaps", got, n)
		}
	}
}

func TestWriterNumbersConcurrentSendsWithoutGaps(t *testing.T) {
	w, st, chatID, users := startWriter(t)
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, created, err := w.submit(context.Background(), message(chatID, users[i%3], "")); err != nil || !created {
				t.Errorf("send %d: created=%v err=%v", i, created, err)
			}
		}()
	}
	wg.Wait()
	wantGapless(t, seqs(t, st, chatID), 200)
}

func TestWriterIdempotency(t *testing.T) {
	cases := []struct {
		name   string
		copies int
		// together submits all copies at once (same batch, or racing ones);
		// otherwise one after another.
		together bool
	}{
		{"retry after the first is stored", 3, false},
		{"copies arriving at the same moment", 8, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, st, chatID, users := startWriter(t)
			results := make([]*store.Message, c.copies)
			created := make([]bool, c.copies)
			var wg sync.WaitGroup
			for i := 0; i < c.copies; i++ {
				send := func() {
					m, ok, err := w.submit(context.Background(), message(chatID, users[0], "same-id"))
					if err != nil {
						t.Error(err)
						return
					}
					results[i], created[i] = m, ok
				}
				if c.together {
					wg.Add(1)
					go func() { defer wg.Done(); send() }()
				} else {
					send()
				}
			}
			wg.Wait()
			firsts := 0
			for i, m := range results {
				if m == nil || m.ID != results[0].ID || m.Seq != 1 {
					t.Fatalf("copy %d answered %+v, want the first message", i, m)
				}
				if created[i] {
					firsts++
				}
			}
			if firsts != 1 {
				t.Fatalf("%d copies reported as new, want exactly 1", firsts)
			}
			// A later message still takes the next seq: no number was burnt.
			if m, _, err := w.submit(context.Background(), message(chatID, users[1], "")); err != nil || m.Seq != 2 {
				t.Fatalf("next message: %+v %v", m, err)
			}
			wantGapless(t, seqs(t, st, chatID), 2)
		})
	}
}

// Another node writing into the same chat makes this node's counter stale:
// the unique (chatId, seq) index refuses the clash and the writer numbers
// again from the store, leaving no gap.
func TestWriterRecoversFromAnotherNodesSeq(t *testing.T) {
	w, st, chatID, users := startWriter(t)
	if _, _, err := w.submit(context.Background(), message(chatID, users[0], "")); err != nil {
		t.Fatal(err)
	}
	for seq := int64(2); seq <= 4; seq++ { // "another node" takes 2..4
		m := message(chatID, users[1], fmt.Sprintf("other-%d", seq))
		m.Seq = seq
		if _, err := st.InsertMessages(context.Background(), []*store.Message{m}); err != nil {
			t.Fatal(err)
		}
	}
	m, created, err := w.submit(context.Background(), message(chatID, users[2], ""))
	if err != nil || !created || m.Seq != 5 {
		t.Fatalf("send after a foreign write: %+v created=%v err=%v, want seq 5", m, created, err)
	}
	wantGapless(t, seqs(t, st, chatID), 5)
	if n := w.clashes.Load(); n != 1 {
		t.Fatalf("%d clashes counted, want 1", n)
	}
}

// At shutdown every queued send gets an answer, stored or refused: a caller
// waiting on an ack is never left hanging.
func TestWriterAnswersQueuedSendsAtShutdown(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	w := newWriter(st, slog.New(slog.DiscardHandler))
	chatID := store.NewID()
	reqs := make([]*sendRequest, 3)
	for i := range reqs {
		reqs[i] = &sendRequest{msg: message(chatID, store.NewID(), ""), reply: make(chan sendResult, 1)}
		w.queue <- reqs[i]
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w.run(ctx)
	for i, req := range reqs {
		select {
		case r := <-req.reply:
			if r.err != nil && r.err != errShuttingDown {
				t.Errorf("send %d: %v", i, r.err)
			}
		default:
			t.Fatalf("send %d got no answer at shutdown", i)
		}
	}
}
