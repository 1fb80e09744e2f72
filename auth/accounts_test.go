package auth

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/apperr"
	"github.com/parley-chat/parley/internal/ratelimit"
	"github.com/parley-chat/parley/store"
)

// The HTTP flows of Accounts are tested end to end at the repository root;
// these tables pin the input rules the root tests only sample.

func TestNormaliseEmail(t *testing.T) {
	// longEmail returns an address of exactly n bytes.
	longEmail := func(n int) string {
		const tail = "@example.com"
		local := strings.Repeat("a", 64)
		var labels []string
		for rest := n - len(local) - len(tail); rest > 0; {
			l := min(rest-1, 60) // 1 for the dot before the label
			if l < 1 {
				local = local[:len(local)-1] // take up the odd byte in the local part
				rest++
				continue
			}
			labels = append(labels, strings.Repeat("b", l))
			rest -= l + 1
		}
		s := local + "@" + strings.Join(labels, ".")
		if len(labels) > 0 {
			s += "."
		}
		s += tail[1:]
		if len(s) != n {
			t.Fatalf("longEmail(%d) built %d bytes", n, len(s))
		}
		return s
	}

	cases := []struct {
		in   string
		want string // "" when refused
	}{
		{"a@b.co", "a@b.co"},
		{"Alice@Example.COM", "alice@example.com"},
		{"first.last+tag@sub.example.org", "first.last+tag@sub.example.org"},
		{"o'brien@example.ie", "o'brien@example.ie"},
		{longEmail(254), longEmail(254)},

		{"", ""},
		{"plainaddress", ""},
		{"@example.com", ""},
		{"alice@", ""},
		{"alice@localhost", ""}, // no dot in the domain
		{"alice@example", ""},
		{"alice@@example.com", ""},
		{"A <a@b.c>", ""}, // a display-name form is not a bare address
		{"<a@b.c>", ""},
		{`"Alice" <a@b.c>`, ""},
		{"a@b.c (comment)", ""},
		{"alice smith@example.com", ""},
		{" alice@example.com", ""},
		{"alice@example.com ", ""},
		{"alice@exa mple.com", ""},
		{"alice\t@example.com", ""},
		{"alice@example.com\n", ""},
		{"alice@example.com\r\nBcc: x@y.z", ""},
		{"a@b.c, d@e.f", ""},
		{`"a b"@example.com`, ""},
		{"alice..smith@example.com", ""},
		{".alice@example.com", ""},
		{"alice@.example.com", ""},
		{"alice@example..com", ""},
		{longEmail(255), ""},
		{strings.Repeat("a", 300) + "@example.com", ""},
	}
	for _, c := range cases {
		got, ok := normaliseEmail(c.in)
		if ok != (c.want != "") || got != c.want {
			t.Errorf("normaliseEmail(%q) = %q, %v; want %q", c.in, got, ok, c.want)
		}
	}
}

func TestCleanDisplayName(t *testing.T) {
	cases := []struct {
		in     string
		want   string
		reason string // "" when accepted
	}{
		{"Alice", "Alice", ""},
		{"  Alice Smith \t", "Alice Smith", ""},
		{"\u00a0Zoë\u3000", "Zoë", ""}, // Unicode spaces are trimmed too
		{"李小龍", "李小龍", ""},
		{"a", "a", ""},
		{strings.Repeat("x", 64), strings.Repeat("x", 64), ""},
		{strings.Repeat("é", 64), strings.Repeat("é", 64), ""}, // 64 runes, 128 bytes
		{strings.Repeat("🙂", 64), strings.Repeat("🙂", 64), ""},
		{"  " + strings.Repeat("x", 64) + "  ", strings.Repeat("x", 64), ""}, // trimmed first

		{"", "", "1 to 64 characters"},
		{"   ", "", "1 to 64 characters"},
		{"\t\n", "", "1 to 64 characters"},
		{strings.Repeat("x", 65), "", "1 to 64 characters"},
		{strings.Repeat("é", 65), "", "1 to 64 characters"},
		{"bad\xffutf8", "", "1 to 64 characters"},
		{"a\x00b", "", "no control characters"},
		{"a\tb", "", "no control characters"},
		{"line\nbreak", "", "no control characters"},
		{"bell\a", "", "no control characters"},
		{"esc\x1b[31mred", "", "no control characters"},
		{"del\x7f", "", "no control characters"},
		{"c1\u0085c1", "", "no control characters"}, // NEL: a control character (and a space, so not at the ends)
	}
	for _, c := range cases {
		got, reason := cleanDisplayName(c.in)
		if got != c.want || reason != c.reason {
			t.Errorf("cleanDisplayName(%q) = %q, %q; want %q, %q", c.in, got, reason, c.want, c.reason)
		}
	}
}

func TestPasswordProblem(t *testing.T) {
	cases := []struct {
		in string
		ok bool
	}{
		{"", false},
		{"1234567", false},
		{"12345678", true},
		{strings.Repeat("p", MaxPasswordBytes), true},
		{strings.Repeat("p", MaxPasswordBytes+1), false},
		{strings.Repeat("é", 36), true},  // 72 bytes
		{strings.Repeat("é", 37), false}, // 37 characters but 74 bytes
	}
	for _, c := range cases {
		if got := passwordProblem(c.in); (got == "") != c.ok {
			t.Errorf("passwordProblem(%d bytes) = %q, want ok=%v", len(c.in), got, c.ok)
		}
	}
}

// countingUsers is a Users that finds no one and counts its lookups.
type countingUsers struct{ lookups atomic.Int64 }

func (u *countingUsers) CreateUser(context.Context, *store.User) error { return nil }
func (u *countingUsers) UserByID(context.Context, string) (*store.User, error) {
	return nil, store.ErrNotFound
}
func (u *countingUsers) UserByLogin(context.Context, string) (*store.User, error) {
	u.lookups.Add(1)
	return nil, store.ErrNotFound
}
func (u *countingUsers) UpdateUser(context.Context, string, store.UserUpdate) (*store.User, error) {
	return nil, store.ErrNotFound
}

// A login from an address whose budget is spent is refused before the
// account is looked up: a guessing flood costs the store nothing.
func TestLoginThrottlesTheAddressBeforeTheLookup(t *testing.T) {
	users := &countingUsers{}
	throttle := NewThrottle(ratelimit.NewMemory(nil), ThrottleLimits{PerAccount: 100, PerAddress: 2, Window: time.Hour})
	passwords, err := NewPasswords(4)
	if err != nil {
		t.Fatal(err)
	}
	a := NewAccounts(users, nil, passwords, nil, throttle, slog.New(slog.DiscardHandler))
	for i := range 5 {
		_, err := a.Login(context.Background(), fmt.Sprintf("guess%d@example.com", i), "password", "192.0.2.1", "")
		want := apperr.Unauthorized
		if i >= 2 {
			want = apperr.RateLimited
		}
		if got := apperr.From(err).Code; got != want {
			t.Fatalf("login %d: %v, want %s", i, err, want)
		}
	}
	if n := users.lookups.Load(); n != 2 {
		t.Fatalf("%d lookups, want 2 (none once the address's budget is spent)", n)
	}
}
