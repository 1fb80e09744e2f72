package eio

import (
	"container/heap"
	"sync"
	"time"
)

// timerKind says what a socket's timer means when it fires.
type timerKind uint8

const (
	tPing           timerKind = iota + 1 // protocol 4: time to send a ping
	tPongTimeout                         // protocol 4: the pong did not come
	tPingTimeout                         // protocol 3: the client's ping did not come
	tCloseTimeout                        // a polling socket closing gracefully got no GET to carry its close packet
	tTombstone                           // a session closed by the client's close packet stops answering its racing GET
	tUpgradeCheck                        // during an upgrade: release a held GET with a noop, as the reference does every 100 ms
	tUpgradeTimeout                      // the upgrade did not complete in time
)

// timer is one scheduled deadline of one socket. It lives inside the socket (no allocation
// per arm) and is only touched under the scheduler's lock.
type timer struct {
	when  int64 // nanoseconds since the scheduler's epoch
	index int   // position in the heap; -1 when not armed
	gen   uint64
	kind  timerKind
	s     *Socket
}

// scheduler drives every socket's timeouts from one goroutine and one time.Timer: a min-heap
// of deadlines. Nothing here is per socket beyond the timer structs the sockets embed.
type scheduler struct {
	mu    sync.Mutex
	h     timerHeap
	epoch time.Time
	wake  chan struct{}
	stop  chan struct{}
	done  chan struct{}
	fire  func(t *timer, kind timerKind, gen uint64)
}

type firing struct {
	t    *timer
	kind timerKind
	gen  uint64
}

func newScheduler(fire func(t *timer, kind timerKind, gen uint64)) *scheduler {
	sc := &scheduler{epoch: time.Now(), wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}), fire: fire}
	go sc.run()
	return sc
}

func (sc *scheduler) now() int64 { return int64(time.Since(sc.epoch)) }

// arm (re)schedules t to fire after d with the given meaning and returns its generation;
// a firing whose generation is no longer current is stale and ignored.
func (sc *scheduler) arm(t *timer, kind timerKind, d time.Duration) uint64 {
	return sc.armAt(t, kind, sc.now()+int64(d))
}

// armAt is arm with an absolute deadline on the scheduler's clock; chained deadlines (the pong
// timeout after a ping) use it so the scheduler's own lateness does not add up.
func (sc *scheduler) armAt(t *timer, kind timerKind, when int64) uint64 {
	sc.mu.Lock()
	t.when = when
	t.kind = kind
	t.gen++
	gen := t.gen
	if t.index >= 0 && t.index < len(sc.h) && sc.h[t.index] == t {
		heap.Fix(&sc.h, t.index)
	} else {
		heap.Push(&sc.h, t)
	}
	first := sc.h[0] == t
	sc.mu.Unlock()
	if first {
		select {
		case sc.wake <- struct{}{}:
		default:
		}
	}
	return gen
}

// disarm cancels t; a firing already under way sees a new generation and does nothing.
func (sc *scheduler) disarm(t *timer) {
	sc.mu.Lock()
	t.gen++
	if t.index >= 0 && t.index < len(sc.h) && sc.h[t.index] == t {
		heap.Remove(&sc.h, t.index)
	}
	sc.mu.Unlock()
}

// current says whether a firing of generation gen is still the timer's current arming.
func (sc *scheduler) current(t *timer, gen uint64) bool {
	sc.mu.Lock()
	ok := t.gen == gen
	sc.mu.Unlock()
	return ok
}

// overdue says whether t is armed as kind and its deadline has passed (the scheduler may not
// have got to it yet).
func (sc *scheduler) overdue(t *timer, kind timerKind) bool {
	sc.mu.Lock()
	ok := t.index >= 0 && t.index < len(sc.h) && sc.h[t.index] == t && t.kind == kind && t.when <= sc.now()
	sc.mu.Unlock()
	return ok
}

func (sc *scheduler) close() {
	close(sc.stop)
	<-sc.done
}

func (sc *scheduler) run() {
	defer close(sc.done)
	tm := time.NewTimer(time.Hour)
	var due []firing
	for {
		sc.mu.Lock()
		now := sc.now()
		due = due[:0]
		for len(sc.h) > 0 && sc.h[0].when <= now {
			t := heap.Pop(&sc.h).(*timer)
			due = append(due, firing{t, t.kind, t.gen})
		}
		wait := time.Hour
		if len(sc.h) > 0 {
			wait = time.Duration(sc.h[0].when - now)
		}
		sc.mu.Unlock()
		for _, f := range due {
			sc.fire(f.t, f.kind, f.gen)
		}
		if len(due) > 0 {
			clear(due)
			continue // handlers may have armed timers that are already due
		}
		tm.Reset(wait)
		select {
		case <-tm.C:
		case <-sc.wake:
			if !tm.Stop() {
				select {
				case <-tm.C:
				default:
				}
			}
		case <-sc.stop:
			tm.Stop()
			return
		}
	}
}

type timerHeap []*timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].when < h[j].when }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *timerHeap) Push(x any) {
	t := x.(*timer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.index = -1
	*h = old[:len(old)-1]
	return t
}
