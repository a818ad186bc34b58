package main

import (
	"context"
	"time"

	"gatehouse/services/metrics"
	"gatehouse/services/revocation"
)

// observer fans the auth service's notices out: outcomes to metrics, revocations to this
// instance's cache (at once, before the request that revoked answers) and to Redis when configured.
type observer struct {
	metrics *metrics.Metrics
	cache   *revocation.Cache
	redis   *revocation.Redis
}

func (o *observer) RefreshOutcome(result string) {
	if o.metrics != nil {
		o.metrics.RefreshOutcome(result)
	}
}

func (o *observer) LoginOutcome(result string) {
	if o.metrics != nil {
		o.metrics.LoginOutcome(result)
	}
}

func (o *observer) Revoked(userID string, sessionIDs []string) {
	if o.cache != nil {
		o.cache.InvalidateUser(userID)
		for _, sid := range sessionIDs {
			o.cache.InvalidateSession(sid)
		}
	}
	if o.redis != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		o.redis.Publish(ctx, userID, sessionIDs)
	}
}
