package auth

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/norm"
)

// Names: usernames and emails are compared in one canonical form, the form
// they are stored in, so that two spellings a person cannot tell apart
// never make two accounts, and either spelling logs in.
//
//   - Usernames are ASCII by contract ([A-Za-z0-9_.-]), so what others see
//     can hold no letter from another script; their canonical form is the
//     PRECIS UsernameCaseMapped profile (RFC 8265: width-mapped, NFC,
//     lower-cased), which for ASCII is lower-casing. Logins typed in any
//     form (full-width letters, say) are mapped the same way before lookup.
//   - Emails are Unicode NFC, then case-folded (and NFC again): "josé"
//     typed composed (U+00E9) or decomposed (e + U+0301) is one address.
//     A look-alike letter from another script (Cyrillic "а" in an
//     otherwise Latin address) is refused at signup: each dot-separated
//     part of the address must be written in one script (digits and
//     punctuation go with any). A part wholly in another script is a
//     different address and allowed; emails are shown to no one but their
//     owner, so such a look-alike can impersonate nobody.

var emailFold = cases.Fold()

// canonicalUsername is the stored and compared form of a username.
func canonicalUsername(s string) (string, bool) {
	c, err := precis.UsernameCaseMapped.String(s)
	if err != nil {
		return "", false
	}
	return c, true
}

// normaliseEmail checks an email and returns its canonical form.
func normaliseEmail(s string) (string, bool) {
	if len(s) > 254 || strings.ContainsAny(s, " \t\r\n<>") || !utf8.ValidString(s) {
		return "", false
	}
	s = norm.NFC.String(s)
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Address != s || addr.Name != "" {
		return "", false
	}
	at := strings.LastIndexByte(s, '@')
	if at < 1 || !strings.Contains(s[at+1:], ".") {
		return "", false
	}
	c := foldEmail(s)
	for _, part := range strings.FieldsFunc(c, func(r rune) bool { return r == '.' || r == '@' }) {
		if mixedScripts(part) {
			return "", false
		}
	}
	return c, true
}

func foldEmail(s string) string {
	if isASCII(s) {
		return strings.ToLower(s)
	}
	return norm.NFC.String(emailFold.String(norm.NFC.String(s)))
}

// canonicalLogin maps what a person typed at login to the form names are
// stored in: an email if it has an '@', else a username. A login no
// canonical form accepts is still looked up (and found by no one), so it
// costs what any unknown name costs.
func canonicalLogin(s string) string {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "@") {
		return foldEmail(s)
	}
	if c, ok := canonicalUsername(s); ok {
		return c
	}
	return foldEmail(s)
}

// mixedScripts reports whether s has letters of more than one script.
// Common and Inherited characters (digits, punctuation, combining marks)
// belong to every script.
func mixedScripts(s string) bool {
	if isASCII(s) {
		return false
	}
	var first *unicode.RangeTable
	for _, r := range s {
		t := scriptOf(r)
		if t == nil {
			continue
		}
		if first == nil {
			first = t
		} else if t != first {
			return true
		}
	}
	return false
}

func scriptOf(r rune) *unicode.RangeTable {
	if r < utf8.RuneSelf {
		if unicode.IsLetter(r) {
			return unicode.Latin
		}
		return nil
	}
	if unicode.Is(unicode.Common, r) || unicode.Is(unicode.Inherited, r) {
		return nil
	}
	for _, t := range unicode.Scripts {
		if unicode.Is(t, r) {
			return t
		}
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
