package events

import (
	"sync"
	"time"
)

// typingThrottle is a token bucket per chat for one socket. A keyboard
// fires typing events far faster than anyone needs them relayed, but the
// contract forbids dropping a change of isTyping (a lost "false" leaves a
// peer staring at "typing…" forever), so a change always passes, bucket or
// not, and only repeats of the current value are ever dropped.
type typingThrottle struct {
	mu    sync.Mutex
	now   func() time.Time
	rate  float64 // tokens a second
	burst float64
	chats map[string]*typingState
}

type typingState struct {
	tokens   float64
	at       time.Time
	isTyping bool
}

// maxTypingChats bounds a socket's state: a client naming endless chat ids
// must not grow it. Forgetting is harmless: the next event for a forgotten
// chat counts as a change and passes.
const maxTypingChats = 256

func newTypingThrottle(rate float64, burst int, now func() time.Time) *typingThrottle {
	return &typingThrottle{now: now, rate: rate, burst: float64(burst), chats: map[string]*typingState{}}
}

// allow reports whether to relay this typing event.
func (t *typingThrottle) allow(chatID string, isTyping bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	st, ok := t.chats[chatID]
	if !ok {
		if len(t.chats) >= maxTypingChats {
			clear(t.chats)
		}
		st = &typingState{tokens: t.burst, at: now}
		t.chats[chatID] = st
	}
	if elapsed := now.Sub(st.at).Seconds(); elapsed > 0 {
		st.tokens = min(t.burst, st.tokens+elapsed*t.rate)
	}
	st.at = now
	change := !ok || st.isTyping != isTyping
	st.isTyping = isTyping
	if st.tokens >= 1 {
		st.tokens--
		return true
	}
	return change
}
