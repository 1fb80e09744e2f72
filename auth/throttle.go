package auth

import (
	"context"
	"time"

	"github.com/parley-chat/parley/internal/ratelimit"
)

// ThrottleLimits are the login throttle's budgets. A budget allows its
// number of failed guesses at once and gives one back per Window, so
// "N failures within Window" is always refused on the next try, and a
// guesser is held to one try per Window once the budget is spent.
type ThrottleLimits struct {
	PerAccount int
	PerAddress int
	Window     time.Duration
}

// DefaultThrottleLimits are the contract's: 5 failures per account or 20
// per client address within 15 minutes.
var DefaultThrottleLimits = ThrottleLimits{PerAccount: 5, PerAddress: 20, Window: 15 * time.Minute}

// Throttle limits password guesses per account and per client address.
//
// A guess takes its unit from both budgets BEFORE the password is
// compared: the compare is slow (bcrypt), and a budget consulted before it
// but charged after it lets every guess already in flight through. So
// however many guesses arrive at once, at most the budget is ever compared.
// A success gives the account its whole budget back and returns its unit
// to the address (the address counts failures only: one good password must
// not clear a guessing run across many accounts).
type Throttle struct {
	lim        ratelimit.Limiter
	perAccount ratelimit.Limit
	perAddress ratelimit.Limit
}

// NewThrottle returns a throttle on lim.
func NewThrottle(lim ratelimit.Limiter, l ThrottleLimits) *Throttle {
	budget := func(n int) ratelimit.Limit {
		if n <= 0 {
			return ratelimit.Limit{}
		}
		return ratelimit.Limit{Rate: 1, Period: l.Window, Burst: n}
	}
	return &Throttle{lim: lim, perAccount: budget(l.PerAccount), perAddress: budget(l.PerAddress)}
}

// accountKey names an account's budget: its user id once the login names
// one (so its username and its email share one budget), else the
// canonical login (so an unknown name costs what a known one does).
func accountKey(userID, login string) string {
	if userID != "" {
		return "login:user:" + userID
	}
	return "login:name:" + login
}

func addressKey(client string) string { return "login:addr:" + client }

// Reserve takes one guess from the account's and the address's budgets. It
// returns how long to wait when either is spent (and then takes nothing).
// A login takes the two halves apart (ReserveAddress before it looks the
// account up, ReserveAccount after); Reserve is both at once.
func (t *Throttle) Reserve(ctx context.Context, account, client string) (time.Duration, error) {
	if wait, err := t.ReserveAddress(ctx, client); err != nil || wait > 0 {
		return wait, err
	}
	return t.ReserveAccount(ctx, account, client)
}

// ReserveAddress takes one guess from the client address's budget. It
// needs no account, so a flood from a spent address costs no lookup.
func (t *Throttle) ReserveAddress(ctx context.Context, client string) (time.Duration, error) {
	res, err := t.lim.Allow(ctx, addressKey(client), t.perAddress)
	if err != nil {
		return 0, err
	}
	if !res.Allowed {
		return max(res.RetryAfter, time.Second), nil
	}
	return 0, nil
}

// ReserveAccount takes one guess from the account's budget, after
// ReserveAddress; when the account's is spent, the address's guess is
// given back.
func (t *Throttle) ReserveAccount(ctx context.Context, account, client string) (time.Duration, error) {
	res, err := t.lim.Allow(ctx, account, t.perAccount)
	if err == nil && res.Allowed {
		return 0, nil
	}
	_ = t.lim.Refund(ctx, addressKey(client), t.perAddress)
	if err != nil {
		return 0, err
	}
	return max(res.RetryAfter, time.Second), nil
}

// refundAddress gives back the address's guess of a login that could not
// be checked (a store error).
func (t *Throttle) refundAddress(ctx context.Context, client string) error {
	return t.lim.Refund(ctx, addressKey(client), t.perAddress)
}

// Succeeded clears the account's budget and returns the address's unit.
func (t *Throttle) Succeeded(ctx context.Context, account, client string) error {
	if err := t.refundAddress(ctx, client); err != nil {
		return err
	}
	return t.lim.Reset(ctx, account)
}
