// Package ratelimit counts attempts in fixed windows, in memory or in Redis (shared by every
// instance). Sign-in and sign-up use it per client IP and per account.
package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Rate is N events per window, written "N/DURATION" as in "10/15m".
type Rate struct {
	N   int
	Per time.Duration
}

// ParseRate reads "N/DURATION".
func ParseRate(s string) (Rate, error) {
	n, per, ok := strings.Cut(s, "/")
	if !ok {
		return Rate{}, fmt.Errorf("%q is not a rate like 10/15m", s)
	}
	count, err := strconv.Atoi(n)
	if err != nil || count < 1 {
		return Rate{}, fmt.Errorf("%q: the count must be a whole number of at least 1", s)
	}
	d, err := time.ParseDuration(per)
	if err != nil || d <= 0 {
		return Rate{}, fmt.Errorf("%q: the window must be a positive duration like 15m", s)
	}
	return Rate{N: count, Per: d}, nil
}

func (r Rate) String() string { return fmt.Sprintf("%d/%s", r.N, r.Per) }

// Decision is the answer for one key.
type Decision struct {
	Allowed    bool
	RetryAfter time.Duration // when not allowed: until the window ends
}

// Limiter counts events per key.
type Limiter interface {
	// Hit counts one event for key and tells whether it is within the rate.
	Hit(ctx context.Context, key string, r Rate) (Decision, error)
	// Undo takes back one event counted by Hit: an attempt reserved before a check that then
	// turned out not to count (a right password).
	Undo(ctx context.Context, key string) error
}

// Memory is a Limiter for one instance.
type Memory struct {
	now     func() time.Time
	mu      sync.Mutex
	windows map[string]*window
	sweep   time.Time
}

type window struct {
	count int
	ends  time.Time
}

// NewMemory returns an in-memory limiter on the given clock.
func NewMemory(now func() time.Time) *Memory {
	return &Memory{now: now, windows: map[string]*window{}}
}

// Hit implements Limiter.
func (m *Memory) Hit(_ context.Context, key string, r Rate) (Decision, error) {
	return m.decide(key, r), nil
}

// Undo implements Limiter.
func (m *Memory) Undo(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if w := m.windows[key]; w != nil && w.count > 0 {
		w.count--
	}
	return nil
}

func (m *Memory) decide(key string, r Rate) Decision {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.expire(now)
	w := m.windows[key]
	if w == nil || !now.Before(w.ends) {
		w = &window{ends: now.Add(r.Per)}
		m.windows[key] = w
	}
	w.count++
	if w.count > r.N {
		return Decision{RetryAfter: w.ends.Sub(now)}
	}
	return Decision{Allowed: true}
}

// expire drops finished windows now and then, so memory stays bounded by recent keys.
func (m *Memory) expire(now time.Time) {
	if now.Before(m.sweep) {
		return
	}
	for k, w := range m.windows {
		if !now.Before(w.ends) {
			delete(m.windows, k)
		}
	}
	m.sweep = now.Add(time.Minute)
}

// Redis is a Limiter whose counts every instance shares.
type Redis struct {
	client *redis.Client
	prefix string
}

// NewRedis counts in the given Redis under keys "gatehouse:rl:...".
func NewRedis(client *redis.Client) *Redis { return &Redis{client: client, prefix: "gatehouse:rl:"} }

// Hit implements Limiter: INCR, and start the window's expiry on the first event.
func (l *Redis) Hit(ctx context.Context, key string, r Rate) (Decision, error) {
	k := l.prefix + key
	pipe := l.client.TxPipeline()
	incr := pipe.Incr(ctx, k)
	pipe.ExpireNX(ctx, k, r.Per)
	ttl := pipe.PTTL(ctx, k)
	if _, err := pipe.Exec(ctx); err != nil {
		return Decision{}, fmt.Errorf("rate limit: %w", err)
	}
	if int(incr.Val()) > r.N {
		return Decision{RetryAfter: positive(ttl.Val(), r.Per)}, nil
	}
	return Decision{Allowed: true}, nil
}

// Undo implements Limiter. A key that expired meanwhile is left alone rather than made negative.
func (l *Redis) Undo(ctx context.Context, key string) error {
	k := l.prefix + key
	if err := undoScript.Run(ctx, l.client, []string{k}).Err(); err != nil && err != redis.Nil {
		return fmt.Errorf("rate limit: %w", err)
	}
	return nil
}

var undoScript = redis.NewScript(`if (tonumber(redis.call("GET", KEYS[1]) or "0") > 0) then return redis.call("DECR", KEYS[1]) end return 0`)

func positive(d, fallback time.Duration) time.Duration {
	if d <= 0 {
		return fallback
	}
	return d
}
