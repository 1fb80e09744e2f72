package web

import "testing"

func TestNormaliseRange(t *testing.T) {
	const size = 20
	cases := map[string]string{
		"":                       "",
		"items=0-1":              "items=0-1",
		"bytes=0-0":              "bytes=0-0",
		"bytes=5-":               "bytes=5-19",
		"bytes=-5":               "bytes=15-19",
		"bytes=-50":              "bytes=0-19",
		"bytes=-0":               "bytes=20-", // unsatisfiable: ServeContent answers 416
		"bytes=100-":             "bytes=20-",
		"bytes=0-1,0-1,0-1":      "bytes=0-1",
		"bytes=0-1, 4-5":         "bytes=0-5",
		"bytes=10-12,-2,0-0":     "bytes=0-19",
		"bytes=-0,100-":          "bytes=20-",
		"bytes=3-1":              "bytes=3-1", // malformed: ServeContent's to refuse
		"bytes=a-b":              "bytes=a-b",
		"bytes=0-1,-0,100-200":   "bytes=0-1",
		"bytes=0-99999999999999": "bytes=0-19",
	}
	for in, want := range cases {
		if got := normaliseRange(in, size); got != want {
			t.Errorf("normaliseRange(%q) = %q, want %q", in, got, want)
		}
	}
}
