package web

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/parley-chat/parley/internal/apperr"
	"github.com/parley-chat/parley/store"
)

// clientErrors are the codes bad input may earn; anything else (internal
// above all) from a decoder is a bug.
var clientErrors = map[apperr.Code]bool{apperr.InvalidInput: true, apperr.TooLarge: true, apperr.UnsupportedMediaType: true}

// FuzzJSONBodies decodes any body into every REST request shape: it is
// accepted or refused with a client error, never a panic or an internal one.
func FuzzJSONBodies(f *testing.F) {
	for _, seed := range []string{
		`{"username":"alice","email":"a@b.co","password":"correct horse"}`,
		`{"login":"alice","password":"x"}`,
		`{"displayName":"A","currentPassword":"x","newPassword":"y"}`,
		`{"type":"group","name":"g","memberIds":["64b000000000000000000001"]}`,
		`{"text":"hi","attachments":["x"],"clientMsgId":"c"}`,
		`{"seq":1e309}`, `{"userIds":[1,2]}`, `{"name":null}`, `[]`, `null`, `{"a":1}{"b":2}`, `{"text":"\ud800"}`,
	} {
		for i := range 8 {
			f.Add(uint8(i), []byte(seed))
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		targets := []func() any{
			func() any { return &signupRequest{} },
			func() any { return &loginRequest{} },
			func() any { return &patchMeRequest{} },
			func() any { return &createChatRequest{} },
			func() any { return &sendRequest{} },
			func() any { return &struct{ Seq *int64 }{} },
			func() any { return &struct{ UserIDs []string }{} },
			func() any { return &struct{ Name *string }{} },
		}
		dst := targets[int(which)%len(targets)]()
		r := httptest.NewRequest("POST", "/api/x", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		err := decodeJSON(httptest.NewRecorder(), r, dst)
		if err != nil && !clientErrors[apperr.From(err).Code] {
			t.Fatalf("%T from %q: %v", dst, body, err)
		}
	})
}

// uploadFiles is a file service that reads the whole upload, as the real
// one streams it to the store.
type uploadFiles struct{ Files }

func (uploadFiles) Create(_ context.Context, owner, kind, name string, r io.Reader) (*store.File, error) {
	n, err := io.Copy(io.Discard, r)
	if err != nil {
		return nil, err
	}
	return &store.File{ID: store.NewID(), OwnerID: owner, Kind: kind, Name: name, Size: n}, nil
}

func (uploadFiles) Discard(context.Context, string) {}

// FuzzMultipartUpload feeds the upload reader any body under any
// Content-Type: it stores at most one file within the limit, or refuses
// with a client error; it never panics.
func FuzzMultipartUpload(f *testing.F) {
	body := "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhello\r\n--b--\r\n"
	for _, seed := range []struct{ ctype, body string }{
		{"multipart/form-data; boundary=b", body},
		{"multipart/form-data; boundary=b", body[:30]},
		{"multipart/form-data; boundary=b", body + body},
		{"multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n--b--\r\n"},
		{"multipart/form-data", body},
		{"multipart/form-data; boundary=\"\"", body},
		{"text/plain", "hello"},
	} {
		f.Add(seed.ctype, []byte(seed.body))
	}
	s := &server{log: slog.New(slog.DiscardHandler), files: uploadFiles{}}
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		r := httptest.NewRequest("POST", "/api/files", bytes.NewReader(body))
		r.Header.Set("Content-Type", ctype)
		file, err := s.receiveFile(httptest.NewRecorder(), r, "u1", store.FileAttachment, 64)
		switch {
		case err != nil && !clientErrors[apperr.From(err).Code]:
			t.Fatalf("%q %q: %v", ctype, body, err)
		case err == nil && (file == nil || file.Size > 64):
			t.Fatalf("%q %q: stored %+v", ctype, body, file)
		}
	})
}
