package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func TestTokensRoundTrip(t *testing.T) {
	tk := NewTokens(testSecret)
	now := time.Now()
	cases := []Claims{
		{UserID: "u1", SessionID: "s1", IssuedAt: now, ExpiresAt: now.Add(time.Hour)},
		{UserID: "64b7f0c2a1b2c3d4e5f60718", SessionID: "64b7f0c2a1b2c3d4e5f60719", IssuedAt: now.Add(-time.Hour), ExpiresAt: now.Add(168 * time.Hour)},
		{UserID: "ünïcode", SessionID: "with space", IssuedAt: now, ExpiresAt: now.Add(time.Minute)},
	}
	for _, in := range cases {
		tok, err := tk.Sign(in)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(tok, ".") != 2 {
			t.Fatalf("Sign = %q, not a compact JWS", tok)
		}
		got, err := tk.Verify(tok)
		if err != nil {
			t.Fatalf("Verify(Sign(%+v)): %v", in, err)
		}
		// JWT NumericDates carry whole seconds.
		if got.UserID != in.UserID || got.SessionID != in.SessionID ||
			!got.IssuedAt.Equal(in.IssuedAt.Truncate(time.Second)) ||
			!got.ExpiresAt.Equal(in.ExpiresAt.Truncate(time.Second)) {
			t.Errorf("Verify(Sign(%+v)) = %+v", in, got)
		}
		if h := header(t, tok); h["alg"] != "HS256" {
			t.Errorf("header %v, want alg HS256", h)
		}
	}
}

// header decodes a token's JOSE header.
func header(t *testing.T, tok string) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.SplitN(tok, ".", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	h := map[string]any{}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestTokensVerify(t *testing.T) {
	tk := NewTokens(testSecret)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// After the key generation, so the leeway cases keep their margin.
	now := time.Now()

	// claims returns a full set of valid claims with edits applied; a nil
	// value deletes the claim.
	claims := func(edits map[string]any) jwt.MapClaims {
		c := jwt.MapClaims{"sub": "u1", "sid": "s1", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		for k, v := range edits {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	sign := func(m jwt.SigningMethod, key any, c jwt.MapClaims) string {
		t.Helper()
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	hs256 := func(edits map[string]any) string { return sign(jwt.SigningMethodHS256, testSecret, claims(edits)) }

	good := hs256(nil)
	parts := strings.Split(good, ".")
	tamper := func(c jwt.MapClaims) string {
		raw, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		return parts[0] + "." + base64.RawURLEncoding.EncodeToString(raw) + "." + parts[2]
	}

	cases := []struct {
		name  string
		token string
		ok    bool
	}{
		{"valid", good, true},
		{"valid, signed by Sign", func() string {
			s, err := tk.Sign(Claims{UserID: "u1", SessionID: "s1", IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}(), true},
		{"expired within the leeway", hs256(map[string]any{"exp": now.Add(-2 * time.Second).Unix()}), true},
		{"issued in the future within the leeway", hs256(map[string]any{"iat": now.Add(2 * time.Second).Unix()}), true},

		{"expired", hs256(map[string]any{"exp": now.Add(-time.Minute).Unix()}), false},
		{"no exp", hs256(map[string]any{"exp": nil}), false},
		{"no iat", hs256(map[string]any{"iat": nil}), false},
		{"iat in the future beyond the leeway", hs256(map[string]any{"iat": now.Add(time.Minute).Unix()}), false},
		{"missing sub", hs256(map[string]any{"sub": nil}), false},
		{"empty sub", hs256(map[string]any{"sub": ""}), false},
		{"missing sid", hs256(map[string]any{"sid": nil}), false},
		{"empty sid", hs256(map[string]any{"sid": ""}), false},
		{"sid of the wrong type", hs256(map[string]any{"sid": 42}), false},
		{"signed with another key", sign(jwt.SigningMethodHS256, []byte("another secret, just as long...."), claims(nil)), false},
		{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil)), false},
		{"HS384 with the same key", sign(jwt.SigningMethodHS384, testSecret, claims(nil)), false},
		{"HS512 with the same key", sign(jwt.SigningMethodHS512, testSecret, claims(nil)), false},
		{"RS256", sign(jwt.SigningMethodRS256, rsaKey, claims(nil)), false},
		{"ES256", sign(jwt.SigningMethodES256, ecKey, claims(nil)), false},
		{"tampered payload (other sub)", tamper(claims(map[string]any{"sub": "u2"})), false},
		{"tampered payload (later exp)", tamper(claims(map[string]any{"exp": now.Add(1000 * time.Hour).Unix()})), false},
		{"signature stripped", parts[0] + "." + parts[1] + ".", false},
		{"header swapped for alg none", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + ".", false},
		{"empty", "", false},
		{"garbage", "garbage", false},
		{"three garbage segments", "not.a.token", false},
		{"bearer prefix", "Bearer " + good, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := tk.Verify(c.token)
			if c.ok {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if got.UserID != "u1" || got.SessionID != "s1" {
					t.Fatalf("Verify = %+v", got)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify accepted it: %+v", got)
			}
			if !errors.Is(err, ErrBadToken) {
				t.Fatalf("Verify error %v does not wrap ErrBadToken", err)
			}
			if got != (Claims{}) {
				t.Fatalf("Verify returned claims %+v with an error", got)
			}
		})
	}
}
