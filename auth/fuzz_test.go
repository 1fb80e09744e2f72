package auth

import (
	"strings"
	"testing"
	"time"
)

// FuzzVerifyToken: no string a client sends as a token verifies unless it
// was signed with the secret, and none panics.
func FuzzVerifyToken(f *testing.F) {
	tok := NewTokens([]byte("fuzz-secret-0123456789abcdef0123456789"))
	now := time.Now()
	good, err := tok.Sign(Claims{UserID: "64b000000000000000000001", SessionID: "64d000000000000000000001", IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(good, ".")
	for _, seed := range []string{
		good, "", ".", "..", "a.b.c", parts[0] + "." + parts[1] + ".",
		"eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + ".",
		"eyJhbGciOiJIUzI1NiJ9.e30.", strings.Repeat("A", 5000),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := tok.Verify(s)
		if err == nil && s != good {
			// Another encoding of the same signed claims is acceptable
			// only if it names the same session.
			if c.UserID != "64b000000000000000000001" || c.SessionID != "64d000000000000000000001" {
				t.Fatalf("forged token %q verified as %+v", s, c)
			}
		}
	})
}

// FuzzLoginNames: the canonical forms never panic, and are idempotent, so
// a stored name always finds itself.
func FuzzLoginNames(f *testing.F) {
	for _, s := range []string{"alice", "Alice@Example.com", "jose\u0301@x.io", "\u0430lice@x.io", "\uff21", "a@b@c", "\xff\xfe", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := canonicalLogin(s)
		if again := canonicalLogin(c); again != c {
			t.Fatalf("canonicalLogin not idempotent: %q → %q → %q", s, c, again)
		}
		if e, ok := normaliseEmail(s); ok {
			if e2, ok2 := normaliseEmail(e); !ok2 || e2 != e {
				t.Fatalf("a canonical email %q does not map to itself (%q, %v)", e, e2, ok2)
			}
		}
	})
}
