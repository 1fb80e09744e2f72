package auth

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func testPasswords(t *testing.T) *Passwords {
	t.Helper()
	p, err := NewPasswords(bcrypt.MinCost) // the cheapest cost keeps the tests fast
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewPasswordsCost(t *testing.T) {
	cases := []struct {
		cost int
		ok   bool
	}{
		{bcrypt.MinCost - 1, false},
		{0, false},
		{-1, false},
		{bcrypt.MinCost, true},
		{bcrypt.MinCost + 1, true},
		// bcrypt.MaxCost itself is valid but takes hours to hash the dummy.
		{bcrypt.MaxCost + 1, false},
	}
	for _, c := range cases {
		p, err := NewPasswords(c.cost)
		if c.ok != (err == nil) || c.ok != (p != nil) {
			t.Errorf("NewPasswords(%d) = %v, %v; want ok=%v", c.cost, p, err, c.ok)
			continue
		}
		if !c.ok {
			continue
		}
		h, err := p.Hash("password1")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := bcrypt.Cost([]byte(h)); err != nil || got != c.cost {
			t.Errorf("NewPasswords(%d) hashes at cost %d (%v)", c.cost, got, err)
		}
	}
}

func TestPasswordsHashCheck(t *testing.T) {
	p := testPasswords(t)
	max := strings.Repeat("p", MaxPasswordBytes)
	cases := []struct {
		name     string
		password string // hashed
		try      string // checked against the hash
		want     bool
	}{
		{"round trip", "correct horse", "correct horse", true},
		{"wrong password", "correct horse", "correct horsf", false},
		{"case matters", "Password1", "password1", false},
		{"empty attempt", "password1", "", false},
		{"unicode", "pässwörd ✓ 密码", "pässwörd ✓ 密码", true},
		{"72 bytes (bcrypt's limit)", max, max, true},
		{"72 bytes, last byte differs", max, max[:MaxPasswordBytes-1] + "q", false},
		// bcrypt ignores bytes past the 72nd; Check must not let a longer
		// password through on its first 72 bytes.
		{"73 bytes whose first 72 match", max, max + "x", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := p.Hash(c.password)
			if err != nil {
				t.Fatal(err)
			}
			if h == c.password || !strings.HasPrefix(h, "$2") {
				t.Fatalf("Hash returned %q, not a bcrypt hash", h)
			}
			if got := p.Check(h, c.try); got != c.want {
				t.Fatalf("Check(hash(%q), %q) = %v, want %v", c.password, c.try, got, c.want)
			}
		})
	}

	t.Run("salted: two hashes of one password differ", func(t *testing.T) {
		a, _ := p.Hash("password1")
		b, _ := p.Hash("password1")
		if a == b || !p.Check(a, "password1") || !p.Check(b, "password1") {
			t.Fatalf("hashes %q and %q", a, b)
		}
	})

	t.Run("73 bytes are refused, not truncated", func(t *testing.T) {
		// Accounts refuses such a password before hashing (tested at the
		// repository root); Hash refuses it too.
		h, err := p.Hash(strings.Repeat("p", MaxPasswordBytes+1))
		if err == nil || !errors.Is(err, bcrypt.ErrPasswordTooLong) {
			t.Fatalf("Hash(73 bytes) = %q, %v; want bcrypt.ErrPasswordTooLong", h, err)
		}
	})
}

func TestPasswordsCheckUnknownUser(t *testing.T) {
	p := testPasswords(t)
	// An empty hash stands for an unknown user: Check still runs one bcrypt
	// comparison (against the dummy hash) so that the answer takes about as
	// long as for a known user. Timing is not asserted; the path is run.
	for _, pw := range []string{"", "password1", "parley-timing-equaliser", strings.Repeat("p", MaxPasswordBytes+1)} {
		if p.Check("", pw) {
			t.Errorf("Check(\"\", %q) = true", pw)
		}
	}
}

func TestPasswordsCheckMalformedHash(t *testing.T) {
	p := testPasswords(t)
	for _, h := range []string{"not a hash", "$2a$04$short", "password1"} {
		if p.Check(h, "password1") {
			t.Errorf("Check(%q, ...) = true", h)
		}
	}
}
