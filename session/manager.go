package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
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
	AddSessionPurges(ctx context.Context, ps []store.SessionPurge) error
	SessionPurges(ctx context.Context, after string, limit int, pendingOnly bool) ([]store.SessionPurge, error)
	FinishSessionPurges(ctx context.Context, sids []string) error
	DeleteExpiredSessionPurges(ctx context.Context, t time.Time) error
}

// EndFunc hears of ended sessions, so live connections can be closed.
type EndFunc func(userID string, sids []string)

// Manager owns the session lifecycle: the store holds the record, the cache
// answers checks; see the package comment for how a revocation reaches
// every node's cache. auth.Accounts drives it: the rest of Parley starts,
// lists and ends sessions through Accounts, and only listens here (OnEnd).
type Manager struct {
	store Sessions
	cache Cache
	log   *slog.Logger
	ttl   time.Duration
	now   func() time.Time

	mu        sync.RWMutex
	listeners []EndFunc

	// reconciled is 1 + the cache epoch whose every purge note has been
	// replayed; 0 until the first reconcile. Cache hits count only while
	// it matches the cache's epoch.
	reconciled  atomic.Uint64
	reconcileMu sync.Mutex
	kick        chan struct{}
	lastExpiry  time.Time // when expired notes were last deleted (reconcileMu)

	touchMu sync.Mutex
	touched map[string]time.Time

	// stop ends the reconcile loop Start began; Close waits for it.
	stop    context.Context
	cancel  context.CancelFunc
	running sync.WaitGroup
}

// touchEvery bounds lastSeenAt writes to one a minute per session.
const touchEvery = time.Minute

// purgeBatch is how many notes one reconcile step reads and replays.
const purgeBatch = 500

// NewManager returns a Manager issuing sessions that last ttl.
func NewManager(st Sessions, cache Cache, ttl time.Duration, log *slog.Logger) *Manager {
	m := &Manager{
		store: st, cache: cache, log: log, ttl: ttl, now: time.Now,
		touched: map[string]time.Time{}, kick: make(chan struct{}, 1),
	}
	m.stop, m.cancel = context.WithCancel(context.Background())
	return m
}

// Start runs the reconcile loop (Run) until Close.
func (m *Manager) Start(every time.Duration) {
	m.running.Add(1)
	go func() {
		defer m.running.Done()
		m.Run(m.stop, every)
	}()
}

// Close stops the reconcile loop and waits for it to return. Pending purge
// notes stay in the store: the next node to reconcile lands them.
func (m *Manager) Close() {
	m.cancel()
	m.running.Wait()
}

// TTL is how long a new session lasts.
func (m *Manager) TTL() time.Duration { return m.ttl }

// OnEnd registers fn to hear of every ended session on this node.
func (m *Manager) OnEnd(fn EndFunc) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.listeners = append(m.listeners, fn)
}

// Run reconciles the cache with the purge notes every interval, and at
// once when a check finds the cache untrusted, until ctx ends. After a
// failed attempt (Redis down) only the interval brings the next one:
// checks go to the database meanwhile, and a down Redis is not hammered.
func (m *Manager) Run(ctx context.Context, every time.Duration) {
	next := time.NewTimer(every)
	defer next.Stop()
	for {
		err := m.Reconcile(ctx, m.trusted(m.cache.Epoch()))
		if err != nil && ctx.Err() == nil {
			m.log.Debug("session cache reconcile", "err", err)
		}
		var kick <-chan struct{}
		if err == nil {
			kick = m.kick
		}
		next.Reset(every) // Go 1.23+: no stale tick survives a Reset
		select {
		case <-ctx.Done():
			return
		case <-next.C:
		case <-kick:
		}
	}
}

func (m *Manager) trusted(epoch uint64) bool { return m.reconciled.Load() == epoch+1 }

func (m *Manager) kickReconcile() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// Reconcile replays purge notes against the cache: only the pending ones
// when pendingOnly (a trusted cache missed no other delete), else all of
// them, after which the cache's epoch as it was at the start is trusted
// (if it did not move meanwhile).
func (m *Manager) Reconcile(ctx context.Context, pendingOnly bool) error {
	m.reconcileMu.Lock()
	defer m.reconcileMu.Unlock()
	for attempt := 0; attempt < 3; attempt++ {
		// A connection first, so that the epoch read next is the one the
		// replay's own commands run under.
		if err := m.cache.Ping(ctx); err != nil {
			return err
		}
		epoch := m.cache.Epoch()
		if err := m.replay(ctx, pendingOnly && m.trusted(epoch)); err != nil {
			return err
		}
		if m.cache.Epoch() == epoch {
			if !m.trusted(epoch) {
				m.reconciled.Store(epoch + 1)
				m.log.Debug("session cache trusted again", "epoch", epoch)
			}
			break
		}
		pendingOnly = false // it reconnected while we replayed: once more, all of it
	}
	if now := m.now(); now.Sub(m.lastExpiry) > time.Minute {
		if err := m.store.DeleteExpiredSessionPurges(ctx, now); err != nil {
			return err
		}
		m.lastExpiry = now
	}
	return nil
}

func (m *Manager) replay(ctx context.Context, pendingOnly bool) error {
	after := ""
	for {
		ps, err := m.store.SessionPurges(ctx, after, purgeBatch, pendingOnly)
		if err != nil {
			return fmt.Errorf("read session purges: %w", err)
		}
		byUser := map[string][]string{}
		var done []string
		for _, p := range ps {
			byUser[p.UserID] = append(byUser[p.UserID], p.SessionID)
			if p.Pending {
				done = append(done, p.SessionID)
			}
		}
		for uid, sids := range byUser {
			if err := m.cache.Delete(ctx, uid, sids...); err != nil {
				return fmt.Errorf("replay session purges: %w", err)
			}
		}
		if err := m.store.FinishSessionPurges(ctx, done); err != nil {
			return fmt.Errorf("finish session purges: %w", err)
		}
		if len(ps) < purgeBatch {
			return nil
		}
		after = ps[len(ps)-1].SessionID
	}
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

// Check verifies that session sid exists and belongs to userID: the cache
// first while it is trusted (see the package comment), else and on a miss
// the store (then the cache is filled).
func (m *Manager) Check(ctx context.Context, userID, sid string) error {
	epoch := m.cache.Epoch()
	if m.trusted(epoch) {
		e, err := m.cache.Get(ctx, sid)
		switch {
		case err == nil && m.cache.Epoch() == epoch:
			if e.UserID != userID || !m.now().Before(e.ExpiresAt) {
				return ErrEnded
			}
			m.touch(ctx, sid)
			return nil
		case err == nil, errors.Is(err, ErrMiss):
			// A miss, or a hit over a connection made since: the store decides.
		default:
			m.log.Warn("session cache unreachable, checking the database", "err", err)
			m.kickReconcile()
		}
	} else {
		m.kickReconcile()
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
	purge := []store.SessionPurge{{SessionID: sid, UserID: userID, ExpiresAt: s.ExpiresAt, Pending: true}}
	if err := m.store.AddSessionPurges(ctx, purge); err != nil {
		return fmt.Errorf("end session: note the purge: %w", err)
	}
	if err := m.store.DeleteSession(ctx, sid); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	m.ended(ctx, userID, []string{sid})
	return nil
}

// EndAll ends every session of userID except exceptSID ("" for none).
func (m *Manager) EndAll(ctx context.Context, userID, exceptSID string) error {
	live, err := m.store.SessionsByUser(ctx, userID)
	if err != nil {
		return fmt.Errorf("end sessions: %w", err)
	}
	noted := map[string]bool{}
	var purges []store.SessionPurge
	for _, s := range live {
		if s.ID != exceptSID {
			noted[s.ID] = true
			purges = append(purges, store.SessionPurge{SessionID: s.ID, UserID: userID, ExpiresAt: s.ExpiresAt, Pending: true})
		}
	}
	if err := m.store.AddSessionPurges(ctx, purges); err != nil {
		return fmt.Errorf("end sessions: note the purges: %w", err)
	}
	sids, err := m.store.DeleteUserSessions(ctx, userID, exceptSID)
	if err != nil {
		return fmt.Errorf("end sessions: %w", err)
	}
	// A session created between the listing and the delete has no note
	// yet; it can live no longer than a fresh session would.
	purges = purges[:0]
	for _, sid := range sids {
		if !noted[sid] {
			purges = append(purges, store.SessionPurge{SessionID: sid, UserID: userID, ExpiresAt: m.now().Add(m.ttl), Pending: true})
		}
	}
	if err := m.store.AddSessionPurges(ctx, purges); err != nil {
		m.log.Warn("end sessions: note the purges", "err", err)
	}
	m.ended(ctx, userID, sids)
	return nil
}

func (m *Manager) ended(ctx context.Context, userID string, sids []string) {
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

// uncache drops noted sessions from the cache and marks their notes done.
// When the cache cannot be reached the notes stay pending and a reconcile
// lands the delete later; meanwhile the failure moved the cache's epoch,
// so this node checks the store.
func (m *Manager) uncache(ctx context.Context, userID string, sids []string) {
	if err := m.cache.Delete(ctx, userID, sids...); err != nil {
		m.log.Warn("session cache unreachable, the delete is left to the reconcile", "err", err)
		m.kickReconcile()
		return
	}
	if err := m.store.FinishSessionPurges(ctx, sids); err != nil {
		m.log.Warn("finish session purges", "err", err)
	}
}

// fill caches a session just read from or written to the store and reports
// whether it still exists. An End that ran between that store access and
// the Put has already cleared the cache, so the Put would bring the ended
// session back until it expires: the store is asked again after the Put, and
// a session gone by then is dropped from the cache (through a purge note,
// like any end).
func (m *Manager) fill(ctx context.Context, e Entry) bool {
	if err := m.cache.Put(ctx, e); err != nil {
		m.log.Warn("session cache unreachable, serving from the database", "err", err)
		m.kickReconcile()
		return true
	}
	if _, err := m.store.SessionByID(ctx, e.SessionID); !errors.Is(err, store.ErrNotFound) {
		return true // still there, or the store cannot tell: keep the entry
	}
	purge := []store.SessionPurge{{SessionID: e.SessionID, UserID: e.UserID, ExpiresAt: e.ExpiresAt, Pending: true}}
	if err := m.store.AddSessionPurges(ctx, purge); err != nil {
		m.log.Warn("note a session purge", "err", err)
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
