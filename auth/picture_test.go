package auth

import "testing"

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
