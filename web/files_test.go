package web

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/parley-chat/parley/store"
)

func TestFilesCleanName(t *testing.T) {
	long := strings.Repeat("é", 200) + ".png" // 404 bytes
	cases := []struct{ in, want string }{
		{"cat.png", "cat.png"},
		{"../../etc/passwd", "passwd"},
		{`C:\Users\me\cat.png`, "cat.png"},
		{"a\x00b\r\nc\x7f.txt", "abc.txt"},
		{"gpj\u202e.exe", "gpj.exe"},
		{"  spaced  ", "spaced"},
		{"bad\xffutf8.txt", "bad\uFFFDutf8.txt"},
		{"..", "file"},
		{"", "file"},
		{"/", "file"},
		{"line\u2028break", "linebreak"},
		{"日本語のファイル.pdf", "日本語のファイル.pdf"},
	}
	for _, c := range cases {
		if got := cleanFileName(c.in); got != c.want {
			t.Errorf("cleanFileName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	got := cleanFileName(long)
	if len(got) > maxNameBytes || !utf8.ValidString(got) || !strings.HasSuffix(got, ".png") {
		t.Errorf("cleanFileName(long) = %d bytes %q, want at most %d valid bytes ending .png", len(got), got, maxNameBytes)
	}
}

func TestFilesContentDisposition(t *testing.T) {
	cases := []struct {
		name, ctype, want string
	}{
		{"cat.png", "image/png", `inline; filename="cat.png"; filename*=UTF-8''cat.png`},
		{"page.html", "text/html; charset=utf-8", `attachment; filename="page.html"; filename*=UTF-8''page.html`},
		{"logo.svg", "text/xml; charset=utf-8", `attachment; filename="logo.svg"; filename*=UTF-8''logo.svg`},
		{`q"uo\te %20.txt`, "text/plain; charset=utf-8", `attachment; filename="q_uo_te _20.txt"; filename*=UTF-8''q%22uo%5Cte%20%2520.txt`},
		{"résumé.pdf", "application/pdf", `attachment; filename="r_sum_.pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf`},
	}
	for _, c := range cases {
		got := contentDisposition(&store.File{Name: c.name, ContentType: c.ctype})
		if got != c.want {
			t.Errorf("contentDisposition(%q, %q) =\n  %s\nwant\n  %s", c.name, c.ctype, got, c.want)
		}
	}
}
