package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/parley-chat/parley/store"
)

const writers = 8

// race runs f(i) for i in [0, writers) on its own goroutine, all released at
// once, and waits for them.
func race(f func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}

func testConcurrency(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("DistinctSeqs", func(t *testing.T) {
		s := open(t)
		chat, _, u1, _ := twoChats(t, s)
		const perWriter = 10
		race(func(i int) {
			for k := range perWriter {
				seq := int64(k*writers + i + 1)
				m := newMessage(chat, u1, seq, fmt.Sprintf("w%d-%d", i, k))
				if n, err := s.InsertMessages(t.Context(), []*store.Message{m}); n != 1 || err != nil {
					t.Errorf("writer %d: InsertMessages(seq %d) = %d, %v; want 1, nil", i, seq, n, err)
				}
			}
		})
		const total = writers * perWriter
		last, err := s.LastSeq(t.Context(), chat)
		must(t, "LastSeq", err)
		if last != total {
			t.Errorf("LastSeq = %d, want %d", last, total)
		}
		if got := seqs(history(t, s, chat)); !int64sEqual(got, seqRange(1, total)) {
			t.Errorf("History seqs = %v, want 1..%d", got, total)
		}
	})

	t.Run("SameSeq", func(t *testing.T) {
		s := open(t)
		chat, _, u1, u2 := twoChats(t, s)
		var (
			mu      sync.Mutex
			winners []*store.Message
		)
		race(func(i int) {
			sender := u1
			if i%2 == 1 {
				sender = u2
			}
			m := newMessage(chat, sender, 1, fmt.Sprintf("writer-%d", i))
			n, err := s.InsertMessages(t.Context(), []*store.Message{m})
			switch {
			case n == 1 && err == nil:
				mu.Lock()
				winners = append(winners, m)
				mu.Unlock()
			case n == 0 && store.ConflictOn(err) == store.ConflictSeq:
			default:
				t.Errorf("writer %d: InsertMessages = %d, %v; want 1, nil or 0, conflict on seq", i, n, err)
			}
		})
		if len(winners) != 1 {
			t.Fatalf("%d writers won seq 1, want exactly 1", len(winners))
		}
		got := history(t, s, chat)
		if len(got) != 1 {
			t.Fatalf("chat holds %d messages, want 1", len(got))
		}
		checkMessage(t, "the winner", &got[0], *winners[0])
	})

	t.Run("SameUsername", func(t *testing.T) {
		s := open(t)
		var (
			mu      sync.Mutex
			winners []store.User
		)
		race(func(i int) {
			u := newUser("alice", "Alice")
			u.Email = fmt.Sprintf("alice%d@example.com", i)
			err := s.CreateUser(t.Context(), &u)
			switch {
			case err == nil:
				mu.Lock()
				winners = append(winners, u)
				mu.Unlock()
			case store.ConflictOn(err) == store.ConflictUsername:
			default:
				t.Errorf("writer %d: CreateUser = %v; want nil or conflict on username", i, err)
			}
		})
		if len(winners) != 1 {
			t.Fatalf("%d writers created username alice, want exactly 1", len(winners))
		}
		got, err := s.UserByLogin(t.Context(), "alice")
		must(t, "UserByLogin", err)
		checkUser(t, "the winner", got, winners[0])
	})
}
