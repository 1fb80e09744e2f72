package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrBadToken covers every way a token can fail to verify; callers answer
// unauthorized without saying which.
var ErrBadToken = errors.New("invalid token")

// Claims are what a Parley token asserts.
type Claims struct {
	UserID    string
	SessionID string
	IssuedAt  time.Time
	ExpiresAt time.Time
	// App names the client app a session was started for: "" for Parley's
	// own API, AppMERN for the MERN API's logins.
	App string
}

type jwtClaims struct {
	SessionID string `json:"sid"`
	App       string `json:"app,omitempty"`
	jwt.RegisteredClaims
}

// Tokens signs and verifies HS256 JWTs.
type Tokens struct {
	secret []byte
	parser *jwt.Parser
}

// NewTokens returns a signer/verifier for secret.
func NewTokens(secret []byte) *Tokens {
	return &Tokens{
		secret: secret,
		// Pinning the method refuses "none" and any algorithm-confusion
		// header (HS384, RS256 with our secret as a "public key", …).
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(5*time.Second),
		),
	}
}

// Sign issues a token for c.
func (t *Tokens) Sign(c Claims) (string, error) {
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwtClaims{
		SessionID: c.SessionID,
		App:       c.App,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   c.UserID,
			IssuedAt:  jwt.NewNumericDate(c.IssuedAt),
			ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
		},
	})
	s, err := tok.SignedString(t.secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// Verify checks algorithm, signature, expiry and that sub and sid are set.
// It does not check that the session still exists: session.Manager does.
func (t *Tokens) Verify(token string) (Claims, error) {
	var c jwtClaims
	_, err := t.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return t.secret, nil })
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrBadToken, err)
	}
	if c.Subject == "" || c.SessionID == "" || c.IssuedAt == nil {
		return Claims{}, fmt.Errorf("%w: missing sub, sid or iat", ErrBadToken)
	}
	return Claims{
		UserID:    c.Subject,
		SessionID: c.SessionID,
		IssuedAt:  c.IssuedAt.Time,
		ExpiresAt: c.ExpiresAt.Time,
		App:       c.App,
	}, nil
}
