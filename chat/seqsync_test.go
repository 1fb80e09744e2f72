package chat

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/parley-chat/parley/internal/testenv"
	"github.com/parley-chat/parley/store/sqlite"
)

type quietBroadcaster struct{}

func (quietBroadcaster) ToChat(string, string, any, string) {}
func (quietBroadcaster) ToUsers([]string, string, any)      {}
func (quietBroadcaster) JoinChat([]string, string)          {}
func (quietBroadcaster) LeaveChat([]string, string)         {}

// seqNode is one node of a two-node test: its service, and the seq
// notices it has received from the other node, in order.
type seqNode struct {
	svc   *Service
	heard chan map[string]int64
}

// twoNodes runs two chat services on one store, as two Parley nodes on one
// database. An in-memory bus stands for Redis: each commit's "stored up to"
// reaches the other node (Numbered), which also reports it on heard.
func twoNodes(t *testing.T, st *sqlite.Store) (a, b *seqNode) {
	t.Helper()
	a, b = startSeqNode(t, st), startSeqNode(t, st)
	a.svc.OnNumbered(func(last map[string]int64) { b.svc.Numbered(last); b.heard <- last })
	b.svc.OnNumbered(func(last map[string]int64) { a.svc.Numbered(last); a.heard <- last })
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, n := range []*seqNode{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); n.svc.Run(ctx) }()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return a, b
}

func startSeqNode(t *testing.T, st *sqlite.Store) *seqNode {
	t.Helper()
	// heard holds more notices than any test makes, so the bus never
	// blocks a writer.
	return &seqNode{svc: New(st, quietBroadcaster{}, DefaultLimits, slog.New(slog.DiscardHandler)),
		heard: make(chan map[string]int64, 1024)}
}

func sendText(ctx context.Context, svc *Service, userID, chatID, text string) (Sent, error) {
	return svc.Send(ctx, userID, "", SendInput{ChatID: chatID, Text: &text, ClientMsgID: &text})
}

// A node's counter follows what the other node stored: a send on B after
// commits on A takes the next seq at once, with no clash to renumber, and a
// notice that is late, repeated or for a chat B has not numbered yet never
// moves a counter back (nor invents one).
func TestSeqNoticesKeepNodesInStep(t *testing.T) {
	// A step sends on "a" or "b" and expects seq want, or ("b<-") hands
	// node B the notice "stored up to want" directly, as a late or
	// repeated delivery would.
	type step struct {
		on   string
		want int64
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"a send on B after commits on A takes the next seq",
			[]step{{"b", 1}, {"a", 2}, {"a", 3}, {"a", 4}, {"b", 5}, {"a", 6}, {"b", 7}, {"b", 8}, {"a", 9}}},
		{"a stale notice leaves the counter where it is",
			[]step{{"b", 1}, {"b", 2}, {"b", 3}, {"b", 4}, {"b<-", 2}, {"b", 5}}},
		{"notices out of order never move the counter back",
			[]step{{"b", 1}, {"a", 2}, {"a", 3}, {"a", 4}, {"b<-", 2}, {"b<-", 3}, {"b", 5}}},
		// B holds no counter for the chat: the notice is ignored (even one
		// naming a seq nobody stored) and B's first send reads the store.
		{"a chat B has not numbered reads the store",
			[]step{{"a", 1}, {"a", 2}, {"b<-", 50}, {"b", 3}, {"a", 4}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := openStore(t)
			chatID, users := newChat(t, st)
			a, b := twoNodes(t, st)
			ctx := context.Background()
			for i, s := range c.steps {
				if s.on == "b<-" {
					b.svc.Numbered(map[string]int64{chatID: s.want})
					continue
				}
				from, to := a, b
				if s.on == "b" {
					from, to = b, a
				}
				sent, err := sendText(ctx, from.svc, users[i%len(users)], chatID, fmt.Sprintf("m%d", i))
				if err != nil || !sent.Created || sent.Message.Seq != s.want {
					t.Fatalf("step %d on %s: %+v created=%v err=%v, want seq %d", i, s.on, sent.Message, sent.Created, err, s.want)
				}
				// The other node hears of it before the next step, as
				// Redis would deliver it between two users' messages.
				if got := testenv.Receive(t, to.heard, "seq notice"); got[chatID] != s.want {
					t.Fatalf("step %d: notice %v, want %s up to %d", i, got, chatID, s.want)
				}
			}
			if n := a.svc.SeqClashes() + b.svc.SeqClashes(); n != 0 {
				t.Fatalf("%d seq clashes, want 0", n)
			}
			sends := 0
			for _, s := range c.steps {
				if s.on != "b<-" {
					sends++
				}
			}
			wantGapless(t, seqs(t, st, chatID), sends)
		})
	}
}

// One commit of many sends is one notice, naming each chat it wrote once
// with the last seq stored there.
func TestSeqNoticeIsOnePerCommit(t *testing.T) {
	st := openStore(t)
	chat1, users := newChat(t, st)
	chat2, _ := newChat(t, st)
	w := newWriter(st, slog.New(slog.DiscardHandler))
	var notices []map[string]int64
	w.committed = func(last map[string]int64) { notices = append(notices, last) }
	reqs := make([]*sendRequest, 0, 5)
	for i, chatID := range []string{chat1, chat2, chat1, chat1, chat2} {
		reqs = append(reqs, &sendRequest{msg: message(chatID, users[i%3], ""), reply: make(chan sendResult, 1)})
	}
	w.commit(context.Background(), reqs)
	want := map[string]int64{chat1: 3, chat2: 2}
	if len(notices) != 1 || fmt.Sprint(notices[0]) != fmt.Sprint(want) {
		t.Fatalf("notices %v, want one: %v", notices, want)
	}
}

// Two nodes sending into one chat at once: every send is acknowledged with
// the seq it is stored at, and the history is gap-free. Clashes that remain
// (both numbering the same seq in the same instant) renumber.
func TestTwoNodesSendConcurrently(t *testing.T) {
	st := openStore(t)
	chatID, users := newChat(t, st)
	a, b := twoNodes(t, st)
	const senders, each = 3, 25
	var mu sync.Mutex
	acked := map[string]int64{} // message id -> acknowledged seq
	var wg sync.WaitGroup
	for n, node := range []*seqNode{a, b} {
		for s := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					sent, err := sendText(context.Background(), node.svc, users[s], chatID, fmt.Sprintf("n%d-s%d-%d", n, s, i))
					if err != nil || !sent.Created {
						t.Errorf("send n%d-s%d-%d: created=%v err=%v", n, s, i, sent.Created, err)
						return
					}
					mu.Lock()
					acked[sent.Message.ID] = sent.Message.Seq
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	total := 2 * senders * each
	msgs, _, err := st.History(context.Background(), chatID, 0, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]int64, len(msgs))
	for i, m := range msgs {
		got[i] = m.Seq
		if seq, ok := acked[m.ID]; !ok || seq != m.Seq {
			t.Fatalf("message %s stored at seq %d, acknowledged at %d (acked: %v)", m.ID, m.Seq, seq, ok)
		}
	}
	wantGapless(t, got, total)
	if len(acked) != total {
		t.Fatalf("%d sends acknowledged, want %d", len(acked), total)
	}
	t.Logf("%d sends, %d seq clashes renumbered", total, a.svc.SeqClashes()+b.svc.SeqClashes())
}
