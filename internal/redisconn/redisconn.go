// Package redisconn opens Redis clients as Parley uses them: Redis is a
// cache and a set of shared counters in front of the database, so a Redis
// that is down must fail fast and let callers fall back, not hang requests.
package redisconn

import (
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Timeout bounds dialing, reading and writing.
const Timeout = 500 * time.Millisecond

// Open returns a client for url (redis://…); it does not dial yet.
func Open(url string) (*redis.Client, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("parse redis url: %w", err)
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = Timeout, Timeout, Timeout
	opts.MaxRetries = 1
	opts.DialerRetries = 1
	opts.DialerRetryTimeout = 50 * time.Millisecond
	return redis.NewClient(opts), nil
}
