package auth

import (
	"testing"
	"time"
)

func TestValidPictureURL(t *testing.T) {
	cases := map[string]bool{
		"https://res.cloudinary.com/x/image/upload/v1/a.jpg": true,
		"http://example.com/a.png":                           true,
		"":                                                   false,
		"javascript:alert(1)":                                false,
		"data:image/png;base64,AAAA":                         false,
		"//example.com/a.png":                                false,
		"https://user:pw@example.com/a.png":                  false,
		"https://example.com/a b.png":                        false,
		"https:///nohost.png":                                false,
		"https://example.com/" + string(make([]byte, 2048)):  false,
	}
	for in, want := range cases {
		if got := ValidPictureURL(in); got != want {
			t.Errorf("ValidPictureURL(%.40q) = %v, want %v", in, got, want)
		}
	}
}

// A token carries the app its session is for, and nothing else changes.
func TestTokenApp(t *testing.T) {
	tokens := NewTokens([]byte("0123456789abcdef0123456789abcdef"))
	now := time.Now()
	for _, app := range []string{"", AppMERN} {
		tok, err := tokens.Sign(Claims{UserID: "u", SessionID: "s", IssuedAt: now, ExpiresAt: now.Add(time.Hour), App: app})
		if err != nil {
			t.Fatal(err)
		}
		c, err := tokens.Verify(tok)
		if err != nil || c.App != app || c.UserID != "u" || c.SessionID != "s" {
			t.Fatalf("app %q: %+v %v", app, c, err)
		}
	}
}
