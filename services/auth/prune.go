package auth

import (
	"context"
	"time"

	"gatehouse/models"
)

// PruneConfig says how long revoked sessions and security events are kept.
type PruneConfig struct {
	RevokedRetention time.Duration // revoked or expired sessions are deleted this long after the fact
	EventRetention   time.Duration // security events older than this are deleted
	Batch            int           // rows per DELETE, so that pruning never holds long locks
}

// Prune deletes expired token history, long-revoked or expired sessions and old events.
func (s *Service) Prune(ctx context.Context, cfg PruneConfig) (models.PruneResult, error) {
	now := s.clock()
	if cfg.Batch <= 0 {
		cfg.Batch = 1000
	}
	r, err := s.store.Prune(ctx, now, now.Add(-cfg.RevokedRetention), now.Add(-cfg.EventRetention), cfg.Batch)
	if err != nil {
		return r, err
	}
	// Sent or undeliverable mail is kept a while for support questions ("did it go out?"), then
	// deleted; its bodies were cleared when it was sent.
	r.Mail, err = s.store.PruneMail(ctx, now.Add(-mailRetention), cfg.Batch)
	return r, err
}

// mailRetention is how long sent and failed messages stay in the outbox.
const mailRetention = 30 * 24 * time.Hour
