package models

import (
	"context"
	"fmt"
	"time"
)

// PruneResult counts what Prune deleted.
type PruneResult struct{ Tokens, Sessions, Events, Mail, Challenges, Enrolments int64 }

// EnrolmentsKept is how long an authenticator app that was never confirmed stays stored.
const EnrolmentsKept = 24 * time.Hour

// Prune deletes what no rule needs any more, from every table, in batches of at most batch rows
// per statement (so that no statement holds its locks for long):
//   - refresh-token history past its idle expiry (expires_at before now);
//   - sessions revoked, or expired, before cutoff, with their token history (ON DELETE CASCADE);
//   - security events created before eventCutoff;
//   - each user's events beyond the newest EventsKeptPerUser, by id (see EventsKeptPerUser);
//   - sign-in challenges past their expiry, and authenticator apps never confirmed within
//     EnrolmentsKept.
//
// Each step repeats until a statement deletes fewer than batch rows, so batch must be at least 1.
func (s *Store) Prune(ctx context.Context, now, cutoff, eventCutoff time.Time, batch int) (PruneResult, error) {
	var r PruneResult
	if batch < 1 {
		return r, fmt.Errorf("prune: batch must be at least 1, got %d", batch)
	}
	steps := []struct {
		count *int64
		sql   string
		args  []any
	}{
		{&r.Tokens, `DELETE FROM refresh_tokens WHERE token_hash IN (SELECT token_hash FROM refresh_tokens WHERE expires_at < ? LIMIT ?)`, []any{now, batch}},
		{&r.Sessions, `DELETE FROM device_sessions WHERE id IN (SELECT id FROM device_sessions WHERE (revoked_at IS NOT NULL AND revoked_at < ?) OR expires_at < ? LIMIT ?)`, []any{cutoff, cutoff, batch}},
		{&r.Events, `DELETE FROM security_events WHERE id IN (SELECT id FROM security_events WHERE created_at < ? LIMIT ?)`, []any{eventCutoff, batch}},
		{&r.Events, `DELETE FROM security_events WHERE id IN (SELECT id FROM (
			SELECT id, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY id DESC) AS newer FROM security_events
		) ranked WHERE newer > ? LIMIT ?)`, []any{EventsKeptPerUser, batch}},
		{&r.Challenges, `DELETE FROM auth_challenges WHERE id_hash IN (SELECT id_hash FROM auth_challenges WHERE expires_at < ? LIMIT ?)`, []any{now, batch}},
		{&r.Enrolments, `DELETE FROM factors WHERE id IN (SELECT id FROM factors WHERE confirmed_at IS NULL AND created_at < ? LIMIT ?)`, []any{now.Add(-EnrolmentsKept), batch}},
	}
	for _, step := range steps {
		for {
			if err := ctx.Err(); err != nil {
				return r, translate(err)
			}
			res := s.with(ctx).Exec(step.sql, step.args...)
			if res.Error != nil {
				return r, translate(res.Error)
			}
			*step.count += res.RowsAffected
			if res.RowsAffected < int64(batch) {
				break
			}
		}
	}
	return r, nil
}
