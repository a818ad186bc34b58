package main

import (
	"context"
	"time"

	"gatehouse/services/auth"
)

// The background jobs of serve: periodic prune and key reload.

// every runs fn on a timer until ctx ends.
func every(ctx context.Context, interval time.Duration, fn func()) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			fn()
		}
	}
}

// prune runs one periodic prune; a failure is logged and tried again next time.
func (a *app) prune(ctx context.Context) {
	r, err := a.auth.Prune(ctx, a.pruneConfig())
	if err != nil {
		a.log.Warn("prune failed", "error", err)
		return
	}
	a.log.Info("pruned", "tokens", r.Tokens, "sessions", r.Sessions, "events", r.Events, "mail", r.Mail)
}

// reloadKeys picks up keys that `gatehouse keys rotate` or another instance added.
func (a *app) reloadKeys() {
	if err := a.keys.Reload(); err != nil {
		a.log.Warn("reload signing keys failed", "error", err)
	}
}

func (a *app) pruneConfig() auth.PruneConfig {
	return auth.PruneConfig{RevokedRetention: a.cfg.RevokedRetention, EventRetention: a.cfg.EventRetention, Batch: 1000}
}
