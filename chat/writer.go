package chat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/parley-chat/parley/internal/apperr"
	"github.com/parley-chat/parley/store"
)

// maxBatch bounds one group commit.
const maxBatch = 256

// maxSeqRetries bounds how often one message is re-numbered after another
// node took its seq. Each retry is a store round trip in which one of the
// writers wins, so a busy chat shared by nodes always progresses; 8 proved
// too few for two nodes sending into one chat at once under -race (a send
// refused as "too busy": chat's TestThreeNodes).
const maxSeqRetries = 64

type sendResult struct {
	msg     *store.Message
	created bool
	err     error
}

type sendRequest struct {
	msg     *store.Message
	reply   chan sendResult
	retries int
	// dups are requests with the same clientMsgId that arrived in the same
	// batch: they get the first one's message.
	dups []*sendRequest
}

// writer is the one goroutine that numbers and stores messages. Numbering in
// memory keeps a send to one insert; batching whatever queued while the
// previous commit ran makes concurrent sends share one write (group commit)
// without adding latency to a lone send. The unique (chatId, seq) and
// (chatId, senderId, clientMsgId) indexes stay the guards: a clash with
// another node re-numbers, a clash on clientMsgId answers the first copy.
type writer struct {
	st    Store
	log   *slog.Logger
	queue chan *sendRequest
	// next is the next seq per chat, owned by the run goroutine.
	next map[string]int64

	// committed, when set (several nodes), hears after each commit the
	// last seq stored per chat, for the other nodes (see advance). It runs
	// on the run goroutine, so it must not block.
	committed func(last map[string]int64)
	// heard holds what other nodes stored (chat -> last seq) until the run
	// goroutine applies it to next, between commits: next keeps one owner,
	// and a notice never lands in the middle of a batch's numbering.
	heardMu sync.Mutex
	heard   map[string]int64
	wake    chan struct{}
	// clashes counts sends refused on (chatId, seq) and renumbered.
	clashes atomic.Uint64
}

func newWriter(st Store, log *slog.Logger) *writer {
	return &writer{st: st, log: log, queue: make(chan *sendRequest, 4*maxBatch), next: map[string]int64{},
		wake: make(chan struct{}, 1)}
}

// advance records that another node stored messages up to last in each
// chat; the run goroutine applies it before its next commit, or at once
// when idle. It never blocks on the writer.
func (w *writer) advance(last map[string]int64) {
	w.heardMu.Lock()
	if w.heard == nil {
		w.heard = make(map[string]int64, len(last))
	}
	for chatID, seq := range last {
		if seq > w.heard[chatID] {
			w.heard[chatID] = seq
		}
	}
	w.heardMu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default: // a wake-up is already pending; it takes this too
	}
}

// applyHeard moves each counter this node holds up to just after what other
// nodes stored, never back (a late notice names a seq already passed). A
// chat with no counter is left alone: its first send reads LastSeq, which
// is exact.
func (w *writer) applyHeard() {
	w.heardMu.Lock()
	heard := w.heard
	w.heard = nil
	w.heardMu.Unlock()
	for chatID, last := range heard {
		if n, ok := w.next[chatID]; ok && last+1 > n {
			w.next[chatID] = last + 1
		}
	}
}

var errShuttingDown = apperr.New(apperr.Unavailable, "the server is shutting down, try again")

// submit queues m and waits until it is stored (or refused).
func (w *writer) submit(ctx context.Context, m *store.Message) (*store.Message, bool, error) {
	req := &sendRequest{msg: m, reply: make(chan sendResult, 1)}
	select {
	case w.queue <- req:
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
	// Once queued, the outcome is awaited even if ctx ends: the message may
	// be stored, and the caller's ack must not lie about it.
	r := <-req.reply
	return r.msg, r.created, r.err
}

func (w *writer) run(ctx context.Context) {
	batch := make([]*sendRequest, 0, maxBatch)
	for {
		select {
		case <-ctx.Done():
			w.drain()
			return
		case <-w.wake:
			w.applyHeard()
			continue
		case req := <-w.queue:
			batch = append(batch[:0], req)
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case req := <-w.queue:
				batch = append(batch, req)
			default:
				break fill
			}
		}
		w.applyHeard()
		// The commit uses a context of its own: shutdown must not cut a
		// write in half after callers were promised an answer.
		w.commit(context.WithoutCancel(ctx), batch)
	}
}

// drain fails whatever is still queued at shutdown.
func (w *writer) drain() {
	for {
		select {
		case req := <-w.queue:
			req.reply <- sendResult{err: errShuttingDown}
		default:
			return
		}
	}
}

func (w *writer) commit(ctx context.Context, batch []*sendRequest) {
	// last is what this commit stored per chat, told to the other nodes
	// once at the end: one notice per commit, not per send.
	var last map[string]int64
	if w.committed != nil {
		defer func() {
			if len(last) > 0 {
				w.committed(last)
			}
		}()
	}
	pending := w.mergeDuplicates(batch)
	msgs := make([]*store.Message, 0, len(pending))
	for len(pending) > 0 {
		msgs = msgs[:0]
		for _, req := range pending {
			seq, err := w.nextSeq(ctx, req.msg.ChatID)
			if err != nil {
				w.fail(pending, err)
				return
			}
			req.msg.Seq = seq
			w.next[req.msg.ChatID] = seq + 1
			msgs = append(msgs, req.msg)
		}
		n, err := w.st.InsertMessages(ctx, msgs)
		for _, req := range pending[:n] {
			w.answer(req, sendResult{msg: req.msg, created: true})
			if w.committed != nil {
				if last == nil {
					last = map[string]int64{}
				}
				if req.msg.Seq > last[req.msg.ChatID] {
					last[req.msg.ChatID] = req.msg.Seq
				}
			}
		}
		if err == nil {
			return
		}
		failed, rest := pending[n], pending[n+1:]
		// Nothing after n was stored: number those again from what is.
		w.rewind(pending[:n], pending[n:])
		retry, done := w.resolve(ctx, failed, err)
		if done != nil {
			w.answer(failed, *done)
		}
		if retry {
			rest = append([]*sendRequest{failed}, rest...)
		}
		pending = rest
	}
}

// resolve decides what a refused message gets: the first copy (clientMsgId
// clash), another number (seq clash), or an error.
func (w *writer) resolve(ctx context.Context, req *sendRequest, err error) (retry bool, done *sendResult) {
	m := req.msg
	on := store.ConflictOn(err)
	if on == store.ConflictClientMsgID || (on == store.ConflictUnknown && m.ClientMsgID != "") {
		prev, lerr := w.st.MessageByClientID(ctx, m.ChatID, m.SenderID, m.ClientMsgID)
		if lerr == nil {
			return false, &sendResult{msg: prev, created: false}
		}
		if on == store.ConflictClientMsgID {
			return false, &sendResult{err: fmt.Errorf("load first copy: %w", lerr)}
		}
	}
	if on == store.ConflictSeq || on == store.ConflictUnknown {
		delete(w.next, m.ChatID) // another node wrote: reload from the store
		w.clashes.Add(1)
		req.retries++
		if req.retries > maxSeqRetries {
			return false, &sendResult{err: apperr.Wrap(apperr.Unavailable, "the chat is too busy, try again", err)}
		}
		return true, nil
	}
	return false, &sendResult{err: fmt.Errorf("store message: %w", err)}
}

// rewind resets each chat's counter to just after what was stored, for the
// chats of requests that were not.
func (w *writer) rewind(stored, unstored []*sendRequest) {
	for _, req := range unstored {
		delete(w.next, req.msg.ChatID)
	}
	for _, req := range stored {
		if req.msg.Seq+1 > w.next[req.msg.ChatID] {
			w.next[req.msg.ChatID] = req.msg.Seq + 1
		}
	}
	// A chat with nothing stored in this round reloads from the store,
	// which is exact, if slower.
}

func (w *writer) nextSeq(ctx context.Context, chatID string) (int64, error) {
	if n, ok := w.next[chatID]; ok {
		return n, nil
	}
	last, err := w.st.LastSeq(ctx, chatID)
	if err != nil {
		return 0, fmt.Errorf("last seq: %w", err)
	}
	w.next[chatID] = last + 1
	return last + 1, nil
}

// mergeDuplicates folds requests with the same (chat, sender, clientMsgId)
// into the first, so two copies arriving together store one message.
func (w *writer) mergeDuplicates(batch []*sendRequest) []*sendRequest {
	type key struct{ chat, sender, client string }
	var first map[key]*sendRequest
	out := batch[:0:0]
	for _, req := range batch {
		m := req.msg
		if m.ClientMsgID != "" {
			if first == nil {
				first = map[key]*sendRequest{}
			}
			k := key{m.ChatID, m.SenderID, m.ClientMsgID}
			if f, ok := first[k]; ok {
				f.dups = append(f.dups, req)
				continue
			}
			first[k] = req
		}
		out = append(out, req)
	}
	return out
}

func (w *writer) answer(req *sendRequest, r sendResult) {
	req.reply <- r
	for _, d := range req.dups {
		dr := r
		dr.created = false
		d.reply <- dr
	}
}

func (w *writer) fail(reqs []*sendRequest, err error) {
	if !errors.Is(err, context.Canceled) {
		w.log.Error("storing messages failed", "err", err)
	}
	for _, req := range reqs {
		w.answer(req, sendResult{err: err})
	}
}
