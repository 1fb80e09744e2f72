// Package apperr is the contract's error vocabulary: the codes every REST
// answer and socket ack carries, and the one mapping from Go errors to them.
package apperr

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/parley-chat/parley/store"
)

// Code is a contract error code.
type Code string

const (
	InvalidInput         Code = "invalid_input"
	Unauthorized         Code = "unauthorized"
	Forbidden            Code = "forbidden"
	NotFound             Code = "not_found"
	Conflict             Code = "conflict"
	TooLarge             Code = "too_large"
	UnsupportedMediaType Code = "unsupported_media_type"
	RateLimited          Code = "rate_limited"
	Unavailable          Code = "unavailable"
	Internal             Code = "internal"
)

// Status is the HTTP status the contract pairs with c.
func (c Code) Status() int {
	switch c {
	case InvalidInput:
		return http.StatusBadRequest
	case Unauthorized:
		return http.StatusUnauthorized
	case Forbidden:
		return http.StatusForbidden
	case NotFound:
		return http.StatusNotFound
	case Conflict:
		return http.StatusConflict
	case TooLarge:
		return http.StatusRequestEntityTooLarge
	case UnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	case RateLimited:
		return http.StatusTooManyRequests
	case Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// Error is an error a client is meant to see. Message is safe to show;
// the wrapped cause never leaves the server.
type Error struct {
	Code    Code
	Message string
	// Fields gives per-field reasons for invalid_input.
	Fields map[string]string
	// RetryAfter is set on rate_limited.
	RetryAfter time.Duration
	// Status overrides Code.Status() where the contract says so (416).
	Status int
	cause  error
}

func (e *Error) Error() string {
	if e.cause != nil {
		return string(e.Code) + ": " + e.Message + ": " + e.cause.Error()
	}
	return string(e.Code) + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.cause }

// HTTPStatus is the status to answer with.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	return e.Code.Status()
}

// New returns a client-facing error.
func New(code Code, message string) *Error { return &Error{Code: code, Message: message} }

// Wrap returns a client-facing error that keeps cause for logs.
func Wrap(code Code, message string, cause error) *Error {
	return &Error{Code: code, Message: message, cause: cause}
}

// Invalid is invalid_input with reasons per field.
func Invalid(message string, fields map[string]string) *Error {
	return &Error{Code: InvalidInput, Message: message, Fields: fields}
}

// Field is invalid_input naming one field.
func Field(field, reason string) *Error {
	return Invalid(field+": "+reason, map[string]string{field: reason})
}

// From maps any error to the client-facing error it stands for. This is the
// one place where causes become codes; whatever is not recognised is
// internal, with a message that says nothing about the cause.
func From(err error) *Error {
	var e *Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &e):
		return e
	case errors.Is(err, store.ErrNotFound):
		return Wrap(NotFound, "not found", err)
	case errors.Is(err, store.ErrConflict):
		return Wrap(Conflict, "already exists", err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return Wrap(Unavailable, "the server is busy, try again", err)
	default:
		return Wrap(Internal, "internal error", err)
	}
}

// Body is the wire shape of an error.
type Body struct {
	Error BodyError `json:"error"`
}

// BodyError is the inner object of Body.
type BodyError struct {
	Code    Code              `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
}

// Body returns e in the contract's shape.
func (e *Error) Body() Body {
	return Body{Error: BodyError{Code: e.Code, Message: e.Message, Fields: e.Fields}}
}
