package events

import (
	"context"
	"sync"
)

// Conn is one live socket as Parley's handlers see it. engine.go adapts the
// Socket.IO engine to it; tests use a fake, so no handler needs a network.
type Conn interface {
	// ID is the Socket.IO socket id; every socket is alone in a room of that name.
	ID() string
	UserID() string
	SessionID() string
	Emit(event string, payload any)
	Join(rooms ...string)
	Leave(room string)
	// Rooms lists the rooms the socket is in; a recovered socket comes
	// back with the rooms it had, which may have gone stale meanwhile.
	Rooms() []string
	// Disconnect ends the socket from the server side: the client sees
	// "io server disconnect" and does not reconnect by itself.
	Disconnect()
	// Drop closes the underlying connection without a disconnect packet, so
	// the client sees a transport close and reconnects by itself. It is for
	// failures on our side that a retry may cure.
	Drop()
}

// Ack answers a client event; nil when the client asked for no answer.
type Ack func(payload any)

// Room names. A socket is in user:<uid>, session:<sid> and chat:<cid> for
// each of its chats, besides the room named by its own id.
func userRoom(userID string) string       { return "user:" + userID }
func sessionRoom(sessionID string) string { return "session:" + sessionID }
func chatRoom(chatID string) string       { return "chat:" + chatID }

// lane runs one socket's tasks of one kind in order, on a goroutine that
// exists only while there is work: sends are stored and acked in the order
// they were sent, typing changes are relayed in order, and a slow kind never
// holds up another. A full lane blocks its producer (the socket's own event
// queue), which pushes back on that socket alone.
type lane struct {
	mu      sync.Mutex
	space   sync.Cond
	tasks   []func()
	running bool
	limit   int
	work    *inflight
}

func newLane(limit int, work *inflight) *lane {
	l := &lane{limit: limit, work: work}
	l.space.L = &l.mu
	return l
}

func (l *lane) push(task func()) {
	l.mu.Lock()
	for len(l.tasks) >= l.limit {
		l.space.Wait()
	}
	l.tasks = append(l.tasks, task)
	if !l.running {
		l.running = true
		l.work.begin()
		go l.run()
	}
	l.mu.Unlock()
}

func (l *lane) run() {
	defer l.work.end()
	for {
		l.mu.Lock()
		if len(l.tasks) == 0 {
			l.running = false
			l.tasks = nil
			l.mu.Unlock()
			return
		}
		task := l.tasks[0]
		l.tasks[0] = nil
		l.tasks = l.tasks[1:]
		l.space.Signal()
		l.mu.Unlock()
		task()
	}
}

// inflight counts work that Close waits for. sync.WaitGroup forbids an Add
// from zero racing a Wait, which is exactly what a socket event arriving
// during shutdown would do.
type inflight struct {
	mu   sync.Mutex
	n    int
	idle chan struct{}
}

func (w *inflight) begin() {
	w.mu.Lock()
	w.n++
	w.mu.Unlock()
}

func (w *inflight) end() {
	w.mu.Lock()
	w.n--
	if w.n == 0 && w.idle != nil {
		close(w.idle)
		w.idle = nil
	}
	w.mu.Unlock()
}

// wait returns when nothing is in flight or ctx ends.
func (w *inflight) wait(ctx context.Context) error {
	w.mu.Lock()
	if w.n == 0 {
		w.mu.Unlock()
		return nil
	}
	if w.idle == nil {
		w.idle = make(chan struct{})
	}
	idle := w.idle
	w.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
