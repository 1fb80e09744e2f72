// Package str holds the few string helpers several packages need, so each
// exists once.
package str

import "unicode/utf8"

// Cut shortens s to at most n bytes without splitting a character.
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Shorten is Cut with an ellipsis when something was cut: for quoting a
// client's value back in an error message.
func Shorten(s string, n int) string {
	if c := Cut(s, n); c != s {
		return c + "…"
	}
	return s
}

// Deref is *p, or "" for nil: request fields are pointers so that absent and
// empty can be told apart, and most rules then treat both alike.
func Deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
