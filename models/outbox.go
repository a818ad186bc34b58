package models

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

// OutboxMessage is one email in the mail outbox. It is written in the same transaction as the
// action it tells about (EnqueueMail on a Store from InTx), so a rolled-back action sends nothing
// and a committed one is not lost; the background sender in services/mail delivers it.
//
// A row is pending while SentAt and FailedAt are both nil, and due once NextAttemptAt has come.
// Claiming a row pushes NextAttemptAt forward (a lease) and counts an attempt, so that a sender
// that dies between claim and send lets the row fall due again: delivery is at least once.
// TextBody and HTMLBody are cleared when the row is sent or failed, because they may hold a link
// token that is otherwise stored only as a hash.
type OutboxMessage struct {
	ID            int64  `gorm:"primaryKey"`
	Kind          string // what the message is about, e.g. "password_reset": for logs and metrics
	Recipient     string // the bare address
	RecipientName string // the display name, or ""
	Subject       string
	TextBody      string
	HTMLBody      string
	MessageID     string // the Message-ID header, chosen at enqueue so that a resent copy keeps it
	CreatedAt     time.Time
	NextAttemptAt time.Time
	Attempts      int // claims so far: the fencing token of the latest claim
	SentAt        *time.Time
	FailedAt      *time.Time
	LastError     string // why the latest attempt failed; never a secret or a body
}

// TableName is the outbox's table.
func (OutboxMessage) TableName() string { return "mail_outbox" }

// EnqueueMail stores a pending message, due at m.NextAttemptAt (m.CreatedAt when zero). Call it
// on the Store that InTx passes, so the message commits or rolls back with the action.
func (s *Store) EnqueueMail(ctx context.Context, m *OutboxMessage) error {
	m.CreatedAt = m.CreatedAt.UTC()
	if m.NextAttemptAt.IsZero() {
		m.NextAttemptAt = m.CreatedAt
	}
	m.NextAttemptAt = m.NextAttemptAt.UTC()
	m.Attempts, m.SentAt, m.FailedAt, m.LastError = 0, nil, nil, ""
	if err := s.with(ctx).Create(m).Error; err != nil {
		return fmt.Errorf("enqueue mail: %w", translate(err))
	}
	return nil
}

// The claim leases up to a limit of pending rows due at now (oldest due first) until the end of
// the lease, and counts an attempt on each, in one statement.
//
// On PostgreSQL the CTE locks the rows it picks and skips rows another claim holds, so that
// concurrent senders take disjoint batches; a row another claim leased since the statement began
// is rechecked against the due condition when locked, and no longer matches. The CTE is
// MATERIALIZED so that it runs once: written as "WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP
// LOCKED)" the planner may run the subquery more than once and claim more than n rows (seen in
// TestOutboxClaimLeasesDueMessages). Parameters: now, limit, lease end.
//
// On SQLite the statement's IMMEDIATE transaction holds the one write lock: claims run one at a
// time. Parameters: lease end, now, limit.
const (
	claimPostgres = `WITH due AS MATERIALIZED (
	SELECT id FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ?
	ORDER BY next_attempt_at, id LIMIT ? FOR UPDATE SKIP LOCKED)
UPDATE mail_outbox m SET attempts = m.attempts + 1, next_attempt_at = ? FROM due WHERE m.id = due.id
RETURNING m.*`
	claimSQLite = `UPDATE mail_outbox SET attempts = attempts + 1, next_attempt_at = ? WHERE id IN (
	SELECT id FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ?
	ORDER BY next_attempt_at, id LIMIT ?)
RETURNING *`
)

// ClaimMail leases up to limit messages due at now until leaseUntil, and returns them by id.
// Each claim counts one attempt; the returned Attempts is the claim's fencing token for
// MarkMailRetry and MarkMailFailed. A claimed row that is neither marked nor retried before
// leaseUntil (its sender died) falls due again.
func (s *Store) ClaimMail(ctx context.Context, now, leaseUntil time.Time, limit int) ([]OutboxMessage, error) {
	if limit < 1 {
		return nil, fmt.Errorf("claim mail: limit must be at least 1, got %d", limit)
	}
	now, leaseUntil = now.UTC(), leaseUntil.UTC()
	var claimed []OutboxMessage
	var err error
	if s.dialect == Postgres {
		err = s.with(ctx).Raw(claimPostgres, now, limit, leaseUntil).Scan(&claimed).Error
	} else {
		err = s.with(ctx).Raw(claimSQLite, leaseUntil, now, limit).Scan(&claimed).Error
	}
	if err != nil {
		return nil, fmt.Errorf("claim mail: %w", translate(err))
	}
	slices.SortFunc(claimed, func(a, b OutboxMessage) int { return cmp.Compare(a.ID, b.ID) })
	return claimed, nil
}

// MarkMailSent records that message id was delivered at `at`, and clears its bodies. It holds
// whichever claim delivered it (a message out is out), so it checks no fencing token; it returns
// ErrNotFound when the message is unknown or already marked sent.
func (s *Store) MarkMailSent(ctx context.Context, id int64, at time.Time) error {
	res := s.with(ctx).Exec(`UPDATE mail_outbox SET sent_at = ?, failed_at = NULL, text_body = '', html_body = ''
		WHERE id = ? AND sent_at IS NULL`, at.UTC(), id)
	return markResult("mark mail sent", id, res.Error, res.RowsAffected)
}

// MarkMailRetry makes message id due again at next after a failed attempt, keeping lastError
// (which must hold no secret). It changes the row only while the claim that made attempt
// `attempt` is the latest and the row is still pending, and returns ErrNotFound otherwise (the
// lease ran out and another sender claimed it, or it was marked meanwhile).
func (s *Store) MarkMailRetry(ctx context.Context, id int64, attempt int, next time.Time, lastError string) error {
	res := s.with(ctx).Exec(`UPDATE mail_outbox SET next_attempt_at = ?, last_error = ?
		WHERE id = ? AND attempts = ? AND sent_at IS NULL AND failed_at IS NULL`, next.UTC(), lastError, id, attempt)
	return markResult("mark mail for retry", id, res.Error, res.RowsAffected)
}

// MarkMailFailed gives up on message id at `at` (undeliverable, or retried for too long), keeps
// lastError (no secret) and clears the bodies. Like MarkMailRetry it needs the latest claim.
func (s *Store) MarkMailFailed(ctx context.Context, id int64, attempt int, at time.Time, lastError string) error {
	res := s.with(ctx).Exec(`UPDATE mail_outbox SET failed_at = ?, last_error = ?, text_body = '', html_body = ''
		WHERE id = ? AND attempts = ? AND sent_at IS NULL AND failed_at IS NULL`, at.UTC(), lastError, id, attempt)
	return markResult("mark mail failed", id, res.Error, res.RowsAffected)
}

func markResult(what string, id int64, err error, rows int64) error {
	if err != nil {
		return fmt.Errorf("%s %d: %w", what, id, translate(err))
	}
	if rows == 0 {
		return fmt.Errorf("%s %d: %w", what, id, ErrNotFound)
	}
	return nil
}

// OutboxMessageByID reads one message of the outbox (tests and tools).
func (s *Store) OutboxMessageByID(ctx context.Context, id int64) (*OutboxMessage, error) {
	var m OutboxMessage
	err := s.with(ctx).Where("id = ?", id).Take(&m).Error
	if err != nil {
		return nil, fmt.Errorf("outbox message %d: %w", id, translate(err))
	}
	return &m, nil
}

// PendingMail counts the messages neither sent nor failed: the queue's depth.
func (s *Store) PendingMail(ctx context.Context) (int64, error) {
	var n int64
	err := s.with(ctx).Model(&OutboxMessage{}).Where("sent_at IS NULL AND failed_at IS NULL").Count(&n).Error
	if err != nil {
		return 0, fmt.Errorf("count pending mail: %w", translate(err))
	}
	return n, nil
}

// PruneMail deletes messages sent, or failed, before cutoff, in statements of at most batch rows
// (batch at least 1), and returns how many went. Pending messages are never deleted.
func (s *Store) PruneMail(ctx context.Context, cutoff time.Time, batch int) (int64, error) {
	if batch < 1 {
		return 0, fmt.Errorf("prune mail: batch must be at least 1, got %d", batch)
	}
	cutoff = cutoff.UTC()
	var deleted int64
	for _, column := range []string{"sent_at", "failed_at"} {
		statement := `DELETE FROM mail_outbox WHERE id IN (SELECT id FROM mail_outbox WHERE ` + column + ` < ? LIMIT ?)`
		for {
			if err := ctx.Err(); err != nil {
				return deleted, fmt.Errorf("prune mail: %w", translate(err))
			}
			res := s.with(ctx).Exec(statement, cutoff, batch)
			if res.Error != nil {
				return deleted, fmt.Errorf("prune mail: %w", translate(res.Error))
			}
			deleted += res.RowsAffected
			if res.RowsAffected < int64(batch) {
				break
			}
		}
	}
	return deleted, nil
}
