package files

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCleanName(t *testing.T) {
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
		if got := CleanName(c.in); got != c.want {
			t.Errorf("CleanName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	got := CleanName(long)
	if len(got) > maxNameBytes || !utf8.ValidString(got) || !strings.HasSuffix(got, ".png") {
		t.Errorf("CleanName(long) = %d bytes %q, want at most %d valid bytes ending .png", len(got), got, maxNameBytes)
	}
}
