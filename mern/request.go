package mern

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/parley-chat/parley/internal/apperr"
)

// maxBody bounds a request body, as Parley's API does.
const maxBody = 1 << 20

// body is a decoded JSON object whose fields are read as the app sends
// them (some as strings, some as objects or JSON-encoded strings).
type body map[string]json.RawMessage

// readBody decodes the request's JSON object. The app sends
// `Content-type: application/json` on every request with a body.
func readBody(w http.ResponseWriter, r *http.Request) (body, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return nil, apperr.New(apperr.UnsupportedMediaType, "Content-Type must be application/json")
	}
	var b body
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	if err := dec.Decode(&b); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, apperr.New(apperr.TooLarge, "request body is larger than 1 MiB")
		}
		return nil, badRequest("the body must be a JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, badRequest("the body must hold exactly one JSON object")
	}
	if b == nil {
		return nil, badRequest("the body must be a JSON object")
	}
	return b, nil
}

// str reads a string field; absent, null and "" all read as "" (the app
// treats them alike), another JSON type is an error.
func (b body) str(name string) (string, error) {
	raw, ok := b[name]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", badRequest(name + " must be a string")
	}
	return s, nil
}

// id reads an id field given as a string or as an object with an `_id`
// string: the app sends a whole chat where an id is meant.
func (b body) id(name string) (string, error) {
	raw, ok := b[name]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var obj struct {
		ID *string `json:"_id"`
	}
	if json.Unmarshal(raw, &obj) == nil && obj.ID != nil {
		return *obj.ID, nil
	}
	return "", badRequest(name + " must be an id or an object with an _id")
}

// ids reads a list of ids given as a JSON array or, as the app sends it,
// a string holding a JSON-encoded array. Elements may be ids or objects
// with an `_id`.
func (b body) ids(name string) ([]string, bool, error) {
	raw, ok := b[name]
	if !ok || string(raw) == "null" {
		return nil, false, nil
	}
	var encoded string
	if json.Unmarshal(raw, &encoded) == nil {
		raw = json.RawMessage(encoded)
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, true, badRequest(name + " must be an array of user ids")
	}
	out := make([]string, 0, len(elems))
	for _, e := range elems {
		id, err := body{name: e}.id(name)
		if err != nil || id == "" {
			return nil, true, badRequest(name + " must be an array of user ids")
		}
		out = append(out, id)
	}
	return out, true, nil
}
