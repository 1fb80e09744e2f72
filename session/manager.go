package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/parley-chat/parley/internal/str"
	"github.com/parley-chat/parley/store"
)

// ErrEnded means the session does not exist (any more): the token is dead.
var ErrEnded = errors.New("session ended")

// Sessions is the part of the store the manager needs.
type Sessions interface {
	CreateSession(ctx context.Context, s *store.Session) error
	SessionByID(ctx context.Context, id string) (*store.Session, error)
	SessionsByUser(ctx context.Context, userID string) ([]store.Session, error)
	DeleteSession(ctx context.Context, id string) error
	DeleteUserSessions(ctx context.Context, userID, exceptID string) ([]string, error)
	TouchSession(ctx context.Context, id string, at time.Time) error
}

// EndFunc hears of ended sessions, so live connections can be closed.
type EndFunc func(userID string, sids []string)

// Manager owns the session lifecycle: the store holds the record, the cache
// answers checks, and both change together. auth.Accounts drives it: the
// rest of Parley starts, lists and ends sessions through Accounts, and only
// listens here (OnEnd).
type Manager struct {
	store Sessions
	cache Cache
	log   *slog.Logger
	ttl   time.Duration
	now   func() time.Time

	mu        sync.RWMutex
	listeners []EndFunc
	// ended holds sessions whose cache delete failed (Redis down): until the
	// delete lands, this node must not trust a cached copy.
	ended map[string]struct{}

	touchMu sync.Mutex
	touched map[string]time.Time

	// stop ends the cache-delete retries at Close; retries counts them.
	stop    context.Context
	cancel  context.CancelFunc
	retries sync.WaitGroup
}

// touchEvery bounds lastSeenAt writes to one a minute per session.
const touchEvery = time.Minute

// NewManager returns a Manager issuing sessions that last ttl.
func NewManager(st Sessions, cache Cache, ttl time.Duration, log *slog.Logger) *Manager {
	m := &Manager{
		store: st, cache: cache, log: log, ttl: ttl, now: time.Now,
		ended: map[string]struct{}{}, touched: map[string]time.Time{},
	}
	m.stop, m.cancel = context.WithCancel(context.Background())
	return m
}

// Close stops retrying cache deletes and waits for the retries to return.
// Sessions whose delete never landed stay refused on this node until it
// exits, and expire from the cache by their TTL.
func (m *Manager) Close() {
	m.cancel()
	m.retries.Wait()
}

// TTL is how long a new session lasts.
func (m *Manager) TTL() time.Duration { return m.ttl }

// OnEnd registers fn to hear of every ended session on this node.
func (m *Manager) OnEnd(fn EndFunc) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.listeners = append(m.listeners, fn)
}

// Create starts a session for userID.
func (m *Manager) Create(ctx context.Context, userID, userAgent string) (*store.Session, error) {
	now := m.now().UTC().Truncate(time.Millisecond)
	s := &store.Session{
		ID: store.NewID(), UserID: userID, UserAgent: str.Cut(userAgent, 256),
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(m.ttl),
	}
	if err := m.store.CreateSession(ctx, s); err != nil {
		return nil, fmt.Errorf("create session: %w", err)
	}
	// An EndAll that raced this Create leaves s ended: its token is refused.
	m.fill(ctx, Entry{SessionID: s.ID, UserID: userID, ExpiresAt: s.ExpiresAt})
	return s, nil
}

// Check verifies that session sid exists and belongs to userID: cache first,
// the store on a miss (then the cache is filled), and the store alone when
// the cache is unreachable.
func (m *Manager) Check(ctx context.Context, userID, sid string) error {
	m.mu.RLock()
	_, gone := m.ended[sid]
	m.mu.RUnlock()
	if gone {
		return ErrEnded
	}
	e, err := m.cache.Get(ctx, sid)
	switch {
	case err == nil:
		if e.UserID != userID || !m.now().Before(e.ExpiresAt) {
			return ErrEnded
		}
		m.touch(ctx, sid)
		return nil
	case !errors.Is(err, ErrMiss):
		m.log.Warn("session cache unreachable, checking the database", "err", err)
	}
	s, err := m.store.SessionByID(ctx, sid)
	if errors.Is(err, store.ErrNotFound) {
		return ErrEnded
	}
	if err != nil {
		return fmt.Errorf("load session: %w", err)
	}
	if s.UserID != userID || !m.now().Before(s.ExpiresAt) {
		return ErrEnded
	}
	if !m.fill(ctx, Entry{SessionID: s.ID, UserID: s.UserID, ExpiresAt: s.ExpiresAt}) {
		return ErrEnded
	}
	m.touch(ctx, sid)
	return nil
}

// List returns userID's sessions, oldest first.
func (m *Manager) List(ctx context.Context, userID string) ([]store.Session, error) {
	ss, err := m.store.SessionsByUser(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	return ss, nil
}

// End ends one of userID's sessions. Another user's session is not found.
func (m *Manager) End(ctx context.Context, userID, sid string) error {
	s, err := m.store.SessionByID(ctx, sid)
	if err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	if s.UserID != userID {
		return fmt.Errorf("end session: %w", store.ErrNotFound)
	}
	if err := m.store.DeleteSession(ctx, sid); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	m.ended1(ctx, userID, []string{sid})
	return nil
}

// EndAll ends every session of userID except exceptSID ("" for none).
func (m *Manager) EndAll(ctx context.Context, userID, exceptSID string) error {
	sids, err := m.store.DeleteUserSessions(ctx, userID, exceptSID)
	if err != nil {
		return fmt.Errorf("end sessions: %w", err)
	}
	m.ended1(ctx, userID, sids)
	return nil
}

func (m *Manager) ended1(ctx context.Context, userID string, sids []string) {
	if len(sids) == 0 {
		return
	}
	m.uncache(ctx, userID, sids)
	m.touchMu.Lock()
	for _, sid := range sids {
		delete(m.touched, sid)
	}
	m.touchMu.Unlock()
	m.mu.RLock()
	listeners := m.listeners
	m.mu.RUnlock()
	for _, fn := range listeners {
		fn(userID, sids)
	}
}

// uncache drops sids from the cache. When the cache is unreachable this node
// refuses them until a retried delete lands.
func (m *Manager) uncache(ctx context.Context, userID string, sids []string) {
	if err := m.cache.Delete(ctx, userID, sids...); err != nil {
		m.log.Warn("session cache unreachable, will retry the delete", "err", err)
		m.mu.Lock()
		for _, sid := range sids {
			m.ended[sid] = struct{}{}
		}
		m.mu.Unlock()
		m.retries.Add(1)
		go func() {
			defer m.retries.Done()
			m.retryDelete(userID, sids)
		}()
	}
}

// retryDelete keeps trying to drop ended sessions from the cache, so a cache
// that comes back never resurrects them.
func (m *Manager) retryDelete(userID string, sids []string) {
	// Past the longest TTL the cached copies have expired by themselves.
	deadline := m.now().Add(m.ttl)
	for wait := 100 * time.Millisecond; ; wait = min(wait*2, 30*time.Second) {
		select {
		case <-m.stop.Done():
			return
		case <-time.After(wait):
		}
		ctx, cancel := context.WithTimeout(m.stop, 2*time.Second)
		err := m.cache.Delete(ctx, userID, sids...)
		cancel()
		if err == nil {
			m.mu.Lock()
			for _, sid := range sids {
				delete(m.ended, sid)
			}
			m.mu.Unlock()
			return
		}
		if m.now().After(deadline) {
			return
		}
	}
}

// fill caches a session just read from or written to the store and reports
// whether it still exists. An End that ran between that store access and
// the Put has already cleared the cache, so the Put would bring the ended
// session back until it expires: the store is asked again after the Put, and
// a session gone by then is dropped from the cache.
func (m *Manager) fill(ctx context.Context, e Entry) bool {
	if err := m.cache.Put(ctx, e); err != nil {
		m.log.Warn("session cache unreachable, serving from the database", "err", err)
		return true
	}
	if _, err := m.store.SessionByID(ctx, e.SessionID); !errors.Is(err, store.ErrNotFound) {
		return true // still there, or the store cannot tell: keep the entry
	}
	m.uncache(ctx, e.UserID, []string{e.SessionID})
	return false
}

// touch records lastSeenAt at most once a minute per session.
func (m *Manager) touch(ctx context.Context, sid string) {
	now := m.now()
	m.touchMu.Lock()
	last, ok := m.touched[sid]
	if ok && now.Sub(last) < touchEvery {
		m.touchMu.Unlock()
		return
	}
	m.touched[sid] = now
	m.touchMu.Unlock()
	if !ok {
		return // just created or loaded: its record is fresh enough
	}
	if err := m.store.TouchSession(ctx, sid, now.UTC().Truncate(time.Millisecond)); err != nil && !errors.Is(err, store.ErrNotFound) {
		m.log.Warn("touch session", "err", err)
	}
}
