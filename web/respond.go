package web

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/parley-chat/parley/internal/apperr"
)

// maxJSONBody bounds every JSON request body.
const maxJSONBody = 1 << 20

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// handle adapts a handler that returns an error: a nil error means the
// handler answered; any other is answered by writeError.
func (s *server) handle(h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			writeError(w, r, s.log, err)
		}
	}
}

// writeError answers err in the contract's shape: the one place an error
// becomes the contract's error body. Internal causes are logged, never sent.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	e := apperr.From(err)
	if e.Code == apperr.Internal || e.Code == apperr.Unavailable {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if e.RetryAfter > 0 {
		secs := int((e.RetryAfter + 999_999_999) / 1_000_000_000)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	writeJSON(w, e.HTTPStatus(), e.Body())
}

// decodeJSON reads a JSON object body into dst: the Content-Type must say
// JSON, the body must fit maxJSONBody and be one well-formed object whose
// fields have the right JSON types.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return apperr.New(apperr.UnsupportedMediaType, "Content-Type must be application/json")
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return jsonError(err)
		}
		return apperr.New(apperr.InvalidInput, "body must hold exactly one JSON object")
	}
	return nil
}

func jsonError(err error) error {
	var (
		mbe *http.MaxBytesError
		te  *json.UnmarshalTypeError
		syn *json.SyntaxError
	)
	switch {
	case errors.As(err, &mbe):
		return apperr.New(apperr.TooLarge, "request body is larger than 1 MiB")
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return apperr.New(apperr.InvalidInput, "body must be a JSON object")
		}
		return apperr.Field(field, "must be a "+jsonKind(te.Type.Kind().String()))
	case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return apperr.New(apperr.InvalidInput, "body is not valid JSON")
	default:
		return apperr.Wrap(apperr.InvalidInput, "body is not valid JSON", err)
	}
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "string"
	case "slice", "array":
		return "list"
	case "bool":
		return "boolean"
	case "struct", "map", "ptr":
		return "object"
	default:
		return "number"
	}
}
