package testenv

import (
	"testing"
	"time"
)

// ReceiveTimeout bounds how long Receive waits: a guard against a hang,
// never a measure of speed.
const ReceiveTimeout = 15 * time.Second

// Receive waits for the next value on ch; what names it in the failure.
func Receive[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(ReceiveTimeout):
		t.Fatalf("no %s within %s", what, ReceiveTimeout)
		var zero T
		return zero
	}
}
