package web

import (
	"testing"

	"github.com/parley-chat/parley/store"
)

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
