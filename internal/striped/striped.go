// Package striped serialises work per key without a lock per key: a fixed
// set of mutexes, one chosen by the key's hash. Two keys may share a
// mutex, which only costs waiting, never correctness.
package striped

import (
	"hash/fnv"
	"sync"
)

// Locks is a fixed set of mutexes picked by key.
type Locks struct{ mu []sync.Mutex }

// New returns n stripes.
func New(n int) *Locks { return &Locks{mu: make([]sync.Mutex, n)} }

// For returns the mutex that guards key.
func (l *Locks) For(key string) *sync.Mutex {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return &l.mu[h.Sum32()%uint32(len(l.mu))]
}
