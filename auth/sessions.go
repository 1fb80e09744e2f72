package auth

import (
	"context"
	"errors"

	"github.com/parley-chat/parley/internal/apperr"
	"github.com/parley-chat/parley/session"
	"github.com/parley-chat/parley/store"
)

// Sessions is the session lifecycle Accounts drives; *session.Manager
// implements it. Nothing outside auth calls it to start or end a session:
// Accounts is the one way in (see doc.go).
type Sessions interface {
	Create(ctx context.Context, userID, userAgent string) (*store.Session, error)
	Check(ctx context.Context, userID, sid string) error
	List(ctx context.Context, userID string) ([]store.Session, error)
	End(ctx context.Context, userID, sid string) error
	EndAll(ctx context.Context, userID, exceptSID string) error
}

var _ Sessions = (*session.Manager)(nil)

// Logout ends the caller's own session; one already ended is no error.
func (a *Accounts) Logout(ctx context.Context, who Identity) error {
	if err := a.sessions.End(ctx, who.UserID, who.SessionID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// LogoutAll ends every session of the caller, its own included.
func (a *Accounts) LogoutAll(ctx context.Context, who Identity) error {
	return a.sessions.EndAll(ctx, who.UserID, "")
}

// Sessions lists the caller's sessions, oldest first.
func (a *Accounts) Sessions(ctx context.Context, who Identity) ([]store.Session, error) {
	return a.sessions.List(ctx, who.UserID)
}

var errNoSession = apperr.New(apperr.NotFound, "no such session")

// EndSession ends one of the caller's sessions; another user's session, or
// none, is not_found.
func (a *Accounts) EndSession(ctx context.Context, who Identity, sid string) error {
	if !store.ValidID(sid) {
		return errNoSession
	}
	if err := a.sessions.End(ctx, who.UserID, sid); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return apperr.Wrap(apperr.NotFound, "no such session", err)
		}
		return err
	}
	return nil
}
