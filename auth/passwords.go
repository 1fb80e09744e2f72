package auth

import (
	"fmt"
	"sync/atomic"

	"golang.org/x/crypto/bcrypt"
)

// MaxPasswordBytes is bcrypt's input limit. Longer passwords are refused,
// never silently truncated (bcrypt would ignore the tail).
const MaxPasswordBytes = 72

// Passwords hashes and checks passwords with bcrypt at a fixed cost.
type Passwords struct {
	cost  int
	dummy []byte // a hash to compare against when the user is unknown
	// checks counts bcrypt compares, so the throttle's promise (at most
	// its budget of guesses is ever compared) can be watched on /metrics.
	checks atomic.Int64
}

// Checks is how many passwords Check has compared.
func (p *Passwords) Checks() int64 { return p.checks.Load() }

// NewPasswords returns a hasher at cost (bcrypt.MinCost..bcrypt.MaxCost).
func NewPasswords(cost int) (*Passwords, error) {
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("bcrypt cost %d outside %d..%d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("parley-timing-equaliser"), cost)
	if err != nil {
		return nil, fmt.Errorf("hash dummy password: %w", err)
	}
	return &Passwords{cost: cost, dummy: dummy}, nil
}

// Hash returns the bcrypt hash of password.
func (p *Passwords) Hash(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), p.cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// Check reports whether password matches hash. An empty hash (unknown user)
// still costs one bcrypt comparison so both failures take about as long. A
// password over MaxPasswordBytes never matches: bcrypt would compare only its
// first 72 bytes.
func (p *Passwords) Check(hash, password string) bool {
	p.checks.Add(1)
	if hash == "" || len(password) > MaxPasswordBytes {
		_ = bcrypt.CompareHashAndPassword(p.dummy, []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}
