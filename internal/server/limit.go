package server

import (
	"sync"
	"time"

	"github.com/volandoo/fluxiondb/internal/auth"
)

// bucket is a token bucket: rate tokens per second, holding at most burst.
type bucket struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// limiter applies --rate-limit per API key: every connection of a key shares its bucket.
type limiter struct {
	rate, burst float64
	buckets     sync.Map // *auth.Entry → *bucket
}

func (l *limiter) allow(k *auth.Entry, now time.Time) bool {
	v, ok := l.buckets.Load(k)
	if !ok {
		v, _ = l.buckets.LoadOrStore(k, &bucket{tokens: l.burst, last: now})
	}
	b := v.(*bucket)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// forget drops a removed key's bucket.
func (l *limiter) forget(k *auth.Entry) { l.buckets.Delete(k) }

// allow reports whether the connection's key may send one more request now.
func (c *conn) allow() bool {
	l := c.srv.limiter
	if l == nil {
		return true
	}
	return l.allow(c.key, time.Now())
}
