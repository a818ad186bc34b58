package ratelimit

import (
	"context"
	"log/slog"
	"sync/atomic"
)

// Fallback asks a shared limiter (Redis) and, while it fails, a local one. Limits then hold per
// instance instead of across instances: they never fail open. The switch is logged once each way.
type Fallback struct {
	shared   Limiter
	local    Limiter
	log      *slog.Logger
	degraded atomic.Bool
}

// NewFallback wraps shared with a local limiter for when shared is unreachable.
func NewFallback(shared, local Limiter, log *slog.Logger) *Fallback {
	return &Fallback{shared: shared, local: local, log: log}
}

// Hit implements Limiter.
func (f *Fallback) Hit(ctx context.Context, key string, r Rate) (Decision, error) {
	d, err := f.shared.Hit(ctx, key, r)
	if f.healthy(err) {
		return d, nil
	}
	return f.local.Hit(ctx, key, r)
}

// Undo implements Limiter, on whichever limiter answers now.
func (f *Fallback) Undo(ctx context.Context, key string) error {
	if f.healthy(f.shared.Undo(ctx, key)) {
		return nil
	}
	return f.local.Undo(ctx, key)
}

// Degraded tells whether the shared limiter failed on its last use.
func (f *Fallback) Degraded() bool { return f.degraded.Load() }

func (f *Fallback) healthy(err error) bool {
	if err == nil {
		if f.degraded.CompareAndSwap(true, false) {
			f.log.Info("rate limiter: the shared store answers again; limits are shared across instances")
		}
		return true
	}
	if f.degraded.CompareAndSwap(false, true) {
		f.log.Warn("rate limiter: the shared store is unreachable; limits now hold per instance until it answers", "error", err)
	}
	return false
}
