package auth

import "testing"

func TestEmailCanonicalForm(t *testing.T) {
	cases := []struct {
		in, want string // want "" when refused
	}{
		{"jos\u00e9@example.com", "jos\u00e9@example.com"},
		{"jose\u0301@example.com", "jos\u00e9@example.com"}, // decomposed → composed
		{"JOS\u00c9@Example.COM", "jos\u00e9@example.com"},
		{"stra\u00dfe@example.de", "strasse@example.de"},                                             // case folding, not just lower-casing
		{"\u0430lice@example.com", ""},                                                               // Cyrillic а among Latin letters
		{"alice@ex\u0430mple.com", ""},                                                               // in the domain too
		{"\u0430\u043b\u0438\u0441\u0430@example.com", "\u0430\u043b\u0438\u0441\u0430@example.com"}, // wholly Cyrillic: another address
		{"\u03b1\u03b2@example.gr", "\u03b1\u03b2@example.gr"},
		{"a1\u0301b@example.com", "a1\u0301b@example.com"}, // a combining mark goes with any script
	}
	for _, c := range cases {
		got, ok := normaliseEmail(c.in)
		if ok != (c.want != "") || got != c.want {
			t.Errorf("normaliseEmail(%q) = %q, %v; want %q", c.in, got, ok, c.want)
		}
	}
}

func TestCanonicalLogin(t *testing.T) {
	cases := map[string]string{
		"Alice":                     "alice",
		"  Alice ":                  "alice",
		"\uff21lice":                "alice", // full-width A
		"jose\u0301@EXAMPLE.com":    "jos\u00e9@example.com",
		"no spaces allowed in user": "no spaces allowed in user",
	}
	for in, want := range cases {
		if got := canonicalLogin(in); got != want {
			t.Errorf("canonicalLogin(%q) = %q, want %q", in, got, want)
		}
	}
}
