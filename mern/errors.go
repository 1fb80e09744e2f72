package mern

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/parley-chat/parley/internal/apperr"
)

// errorBody is the app's error shape; its frontend shows `message`.
type errorBody struct {
	Message string `json:"message"`
}

// writeError is the one place Parley's errors become the app's: the same
// statuses as Parley's API except that a conflict (an email already
// registered) answers 400 as the app does, and the message names every
// refused field so that the app's toast tells the user what to fix.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := apperr.From(err)
	status := e.HTTPStatus()
	msg := e.Message
	switch e.Code {
	case apperr.Conflict:
		status = http.StatusBadRequest
	case apperr.Internal, apperr.Unavailable:
		a.log.Error("mern request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if len(e.Fields) > 0 {
		names := make([]string, 0, len(e.Fields))
		for f := range e.Fields {
			names = append(names, f)
		}
		sort.Strings(names)
		parts := make([]string, len(names))
		for i, f := range names {
			parts[i] = f + ": " + e.Fields[f]
		}
		msg = strings.Join(parts, "; ")
	}
	if e.RetryAfter > 0 {
		secs := int((e.RetryAfter + 999_999_999) / 1_000_000_000)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	writeJSON(w, status, errorBody{Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// badRequest is the app's 400 for a missing or malformed field.
func badRequest(msg string) error { return apperr.New(apperr.InvalidInput, msg) }
