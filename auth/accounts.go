package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/parley-chat/parley/internal/apperr"
	"github.com/parley-chat/parley/session"
	"github.com/parley-chat/parley/store"
)

// Users is the part of the store accounts need.
type Users interface {
	CreateUser(ctx context.Context, u *store.User) error
	UserByID(ctx context.Context, id string) (*store.User, error)
	UserByLogin(ctx context.Context, login string) (*store.User, error)
	UpdateUser(ctx context.Context, id string, upd store.UserUpdate) (*store.User, error)
}

// Identity is who a verified credential speaks for.
type Identity struct {
	UserID    string
	SessionID string
	// ExpiresAt is when the session ends by time (its token's exp).
	ExpiresAt time.Time
	// App is the client app the session was started for (Claims.App).
	App string
}

// AppMERN marks sessions started through the MERN API: their sockets speak
// the MERN app's dialect (events/mern.go) even when they reconnect with
// only the cookie and never send setup again.
const AppMERN = "mern"

// Grant is a fresh session and the token that names it.
type Grant struct {
	Token     string
	ExpiresAt time.Time
	User      *store.User
	SessionID string
}

// Accounts signs people up, logs them in and verifies their tokens.
type Accounts struct {
	users     Users
	sessions  Sessions
	passwords *Passwords
	tokens    *Tokens
	throttle  *Throttle
	log       *slog.Logger
}

// NewAccounts wires the account service.
func NewAccounts(users Users, sessions Sessions, passwords *Passwords, tokens *Tokens, throttle *Throttle, log *slog.Logger) *Accounts {
	return &Accounts{users: users, sessions: sessions, passwords: passwords, tokens: tokens, throttle: throttle, log: log}
}

var usernamePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,32}$`)

// SignupInput is the signup request.
type SignupInput struct {
	Username    string
	Email       string
	Password    string
	DisplayName *string
	UserAgent   string
	// PictureURL is an external picture (the MERN app's pic); "" for none.
	PictureURL string
	// App is the client app the first session is for ("" or AppMERN).
	App string
}

// Signup creates an account and its first session.
func (a *Accounts) Signup(ctx context.Context, in SignupInput) (*Grant, error) {
	fields := map[string]string{}
	username, ok := canonicalUsername(in.Username)
	if !ok || !usernamePattern.MatchString(in.Username) {
		fields["username"] = "3 to 32 characters of letters, digits, '_', '.' or '-'"
	}
	email, ok := normaliseEmail(in.Email)
	if !ok {
		fields["email"] = "not a valid email address"
	}
	if reason := passwordProblem(in.Password); reason != "" {
		fields["password"] = reason
	}
	display := in.Username
	if in.DisplayName != nil {
		d, reason := cleanDisplayName(*in.DisplayName)
		if reason != "" {
			fields["displayName"] = reason
		}
		display = d
	}
	if in.PictureURL != "" && !ValidPictureURL(in.PictureURL) {
		fields["pictureUrl"] = "an http or https URL of at most 2048 characters"
	}
	if len(fields) > 0 {
		return nil, apperr.Invalid("invalid signup", fields)
	}
	hash, err := a.passwords.Hash(in.Password)
	if err != nil {
		return nil, err
	}
	u := &store.User{
		ID: store.NewID(), Username: username, Email: email,
		DisplayName: display, PasswordHash: hash, PictureURL: in.PictureURL, CreatedAt: time.Now().UTC().Truncate(time.Millisecond),
	}
	if err := a.users.CreateUser(ctx, u); err != nil {
		switch store.ConflictOn(err) {
		case store.ConflictUsername:
			return nil, &apperr.Error{Code: apperr.Conflict, Message: "username is taken", Fields: map[string]string{"username": "taken"}}
		case store.ConflictEmail:
			return nil, &apperr.Error{Code: apperr.Conflict, Message: "email is already registered", Fields: map[string]string{"email": "taken"}}
		}
		return nil, fmt.Errorf("signup: %w", err)
	}
	return a.grant(ctx, u, in.UserAgent, in.App)
}

// ErrBadLogin is the one answer for an unknown user and a wrong password.
var ErrBadLogin = apperr.New(apperr.Unauthorized, "invalid login or password")

// Login checks a password and starts a session. client is the caller's
// address, for throttling. The guess is charged to the throttle before the
// password is compared (see Throttle), and to the account the login names:
// its username and its email share one budget.
func (a *Accounts) Login(ctx context.Context, login, password, client, userAgent string) (*Grant, error) {
	return a.LoginApp(ctx, "", login, password, client, userAgent)
}

// LoginApp is Login for a session of the client app app ("" or AppMERN).
func (a *Accounts) LoginApp(ctx context.Context, app, login, password, client, userAgent string) (*Grant, error) {
	login = canonicalLogin(login)
	if login == "" || password == "" {
		return nil, apperr.Invalid("login and password are required", map[string]string{"login": "required", "password": "required"})
	}
	// The address first: a flood from a spent address costs no lookup.
	if wait, err := a.throttle.ReserveAddress(ctx, client); err != nil || wait > 0 {
		return nil, throttled(wait, err)
	}
	u, err := a.users.UserByLogin(ctx, login)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		_ = a.throttle.refundAddress(ctx, client)
		return nil, fmt.Errorf("login: %w", err)
	}
	hash, userID := "", ""
	if u != nil {
		hash, userID = u.PasswordHash, u.ID
	}
	account := accountKey(userID, login)
	if wait, err := a.throttle.ReserveAccount(ctx, account, client); err != nil || wait > 0 {
		return nil, throttled(wait, err)
	}
	if !a.passwords.Check(hash, password) || u == nil {
		return nil, ErrBadLogin
	}
	if err := a.throttle.Succeeded(ctx, account, client); err != nil {
		a.log.Warn("clear login failures", "err", err)
	}
	return a.grant(ctx, u, userAgent, app)
}

// throttled is a throttle's refusal: its error, or rate_limited.
func throttled(wait time.Duration, err error) error {
	if err != nil {
		return fmt.Errorf("login throttle: %w", err)
	}
	return &apperr.Error{Code: apperr.RateLimited, Message: "too many failed logins, try again later", RetryAfter: wait}
}

func (a *Accounts) grant(ctx context.Context, u *store.User, userAgent, app string) (*Grant, error) {
	s, err := a.sessions.Create(ctx, u.ID, userAgent)
	if err != nil {
		return nil, err
	}
	tok, err := a.tokens.Sign(Claims{UserID: u.ID, SessionID: s.ID, IssuedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt, App: app})
	if err != nil {
		return nil, err
	}
	return &Grant{Token: tok, ExpiresAt: s.ExpiresAt, User: u, SessionID: s.ID}, nil
}

// ErrUnauthenticated answers every failed credential check.
var ErrUnauthenticated = apperr.New(apperr.Unauthorized, "unauthorized")

// Authenticate verifies a token and that its session still exists.
func (a *Accounts) Authenticate(ctx context.Context, token string) (Identity, error) {
	if token == "" {
		return Identity{}, ErrUnauthenticated
	}
	c, err := a.tokens.Verify(token)
	if err != nil {
		return Identity{}, apperr.Wrap(apperr.Unauthorized, "unauthorized", err)
	}
	if err := a.sessions.Check(ctx, c.UserID, c.SessionID); err != nil {
		if errors.Is(err, session.ErrEnded) {
			return Identity{}, apperr.Wrap(apperr.Unauthorized, "unauthorized", err)
		}
		return Identity{}, err
	}
	return Identity{UserID: c.UserID, SessionID: c.SessionID, ExpiresAt: c.ExpiresAt, App: c.App}, nil
}

// ProfileInput is a PATCH /api/me request; nil fields stay as they are.
type ProfileInput struct {
	DisplayName     *string
	CurrentPassword *string
	NewPassword     *string
}

// UpdateProfile changes the caller's display name and/or password. A
// password change ends every other session of the user.
func (a *Accounts) UpdateProfile(ctx context.Context, who Identity, in ProfileInput) (*store.User, error) {
	var upd store.UserUpdate
	fields := map[string]string{}
	if in.DisplayName != nil {
		d, reason := cleanDisplayName(*in.DisplayName)
		if reason != "" {
			fields["displayName"] = reason
		}
		upd.DisplayName = &d
	}
	if in.NewPassword != nil {
		if reason := passwordProblem(*in.NewPassword); reason != "" {
			fields["newPassword"] = reason
		}
		if in.CurrentPassword == nil {
			fields["currentPassword"] = "required to change the password"
		}
	}
	if len(fields) > 0 {
		return nil, apperr.Invalid("invalid profile change", fields)
	}
	u, err := a.users.UserByID(ctx, who.UserID)
	if err != nil {
		return nil, fmt.Errorf("load user: %w", err)
	}
	if in.NewPassword != nil {
		if !a.passwords.Check(u.PasswordHash, *in.CurrentPassword) {
			return nil, apperr.Invalid("current password is wrong", map[string]string{"currentPassword": "wrong password"})
		}
		hash, err := a.passwords.Hash(*in.NewPassword)
		if err != nil {
			return nil, err
		}
		upd.PasswordHash = &hash
	}
	if upd.DisplayName == nil && upd.PasswordHash == nil {
		return u, nil
	}
	u, err = a.users.UpdateUser(ctx, who.UserID, upd)
	if err != nil {
		return nil, fmt.Errorf("update user: %w", err)
	}
	if upd.PasswordHash != nil {
		if err := a.sessions.EndAll(ctx, who.UserID, who.SessionID); err != nil {
			return nil, err
		}
	}
	return u, nil
}

func passwordProblem(p string) string {
	switch {
	case len(p) < 8:
		return "at least 8 bytes"
	case len(p) > MaxPasswordBytes:
		return "at most 72 bytes (bcrypt's limit)"
	}
	return ""
}

// cleanDisplayName trims and checks a display name: 1..64 characters, no
// control characters.
func cleanDisplayName(s string) (string, string) {
	s = strings.TrimSpace(s)
	n := utf8.RuneCountInString(s)
	if n < 1 || n > 64 || !utf8.ValidString(s) {
		return "", "1 to 64 characters"
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "", "no control characters"
		}
	}
	return s, ""
}

// ValidPictureURL tells whether s may be kept as a user's external picture:
// an absolute http(s) URL of at most 2048 characters (browsers show it as
// an image source, so nothing else, such as javascript: or data:, passes).
func ValidPictureURL(s string) bool {
	if len(s) > 2048 || strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil
}
