package models_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"gatehouse/models"
	"gatehouse/models/testdb"
)

// The mail outbox contract, on every database.

// mailNow is the outbox tests' clock.
var mailNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// outboxMessage is a pending message to who, created at `at`.
func outboxMessage(who string, at time.Time) *models.OutboxMessage {
	return &models.OutboxMessage{Kind: "password_reset", Recipient: who + "@example.com", RecipientName: who,
		Subject: "Reset your Gatehouse password", TextBody: "https://gatehouse.example/password/reset?token=secret-" + who,
		HTMLBody: "<p>link</p>", MessageID: "<" + who + "@gatehouse.example>", CreatedAt: at}
}

func enqueue(t *testing.T, db *testdb.DB, m *models.OutboxMessage) *models.OutboxMessage {
	t.Helper()
	if err := db.Store.EnqueueMail(t.Context(), m); err != nil {
		t.Fatalf("enqueue mail to %s: %v", m.Recipient, err)
	}
	return m
}

func outboxRow(t *testing.T, db *testdb.DB, id int64) *models.OutboxMessage {
	t.Helper()
	m, err := db.Store.OutboxMessageByID(t.Context(), id)
	if err != nil {
		t.Fatalf("read outbox message %d: %v", id, err)
	}
	return m
}

func claimedIDs(list []models.OutboxMessage) []int64 {
	var ids []int64
	for _, m := range list {
		ids = append(ids, m.ID)
	}
	return ids
}

func TestOutboxCommitsAndRollsBackWithTheAction(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		var committed int64
		err := db.Store.InTx(ctx, func(tx *models.Store) error {
			m := outboxMessage("alice", mailNow)
			if err := tx.EnqueueMail(ctx, m); err != nil {
				return err
			}
			committed = m.ID
			return nil
		})
		if err != nil {
			t.Fatalf("committed transaction: %v", err)
		}
		errAction := errors.New("the action failed")
		err = db.Store.InTx(ctx, func(tx *models.Store) error {
			if err := tx.EnqueueMail(ctx, outboxMessage("bob", mailNow)); err != nil {
				return err
			}
			return errAction
		})
		if !errors.Is(err, errAction) {
			t.Fatalf("rolled-back transaction: %v, want %v", err, errAction)
		}

		if n, err := db.Store.PendingMail(ctx); err != nil || n != 1 {
			t.Errorf("PendingMail: %d, %v; want 1 (the committed one)", n, err)
		}
		claimed, err := db.Store.ClaimMail(ctx, mailNow, mailNow.Add(time.Minute), 10)
		if err != nil || !slices.Equal(claimedIDs(claimed), []int64{committed}) {
			t.Fatalf("ClaimMail: %v, %v; want only [%d]", claimedIDs(claimed), err, committed)
		}
		got := claimed[0]
		want := outboxMessage("alice", mailNow)
		if got.Recipient != want.Recipient || got.RecipientName != want.RecipientName || got.Subject != want.Subject ||
			got.TextBody != want.TextBody || got.HTMLBody != want.HTMLBody || got.MessageID != want.MessageID ||
			got.Kind != want.Kind || !got.CreatedAt.Equal(mailNow) || got.Attempts != 1 {
			t.Errorf("claimed message %+v does not hold what was enqueued (%+v) with one attempt", got, want)
		}
	})
}

func TestOutboxClaimLeasesDueMessages(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		early := enqueue(t, db, outboxMessage("early", mailNow.Add(-time.Minute)))
		onTime := enqueue(t, db, outboxMessage("on-time", mailNow))
		later := outboxMessage("later", mailNow)
		later.NextAttemptAt = mailNow.Add(time.Minute)
		enqueue(t, db, later)
		lease := 5 * time.Minute

		claimed, err := db.Store.ClaimMail(ctx, mailNow, mailNow.Add(lease), 1)
		if err != nil || !slices.Equal(claimedIDs(claimed), []int64{early.ID}) {
			t.Fatalf("claim one at now: %v, %v; want the one due earliest [%d]", claimedIDs(claimed), err, early.ID)
		}
		claimed, err = db.Store.ClaimMail(ctx, mailNow, mailNow.Add(lease), 10)
		if err != nil || !slices.Equal(claimedIDs(claimed), []int64{onTime.ID}) {
			t.Fatalf("claim at now: %v, %v; want [%d] (the earliest is leased, the last not due)", claimedIDs(claimed), err, onTime.ID)
		}
		if !claimed[0].NextAttemptAt.Equal(mailNow.Add(lease)) {
			t.Errorf("a claimed row is due again at %v, want the end of its lease %v", claimed[0].NextAttemptAt, mailNow.Add(lease))
		}
		claimed, err = db.Store.ClaimMail(ctx, mailNow.Add(30*time.Second), mailNow.Add(lease), 10)
		if err != nil || len(claimed) != 0 {
			t.Fatalf("claim again before anything is due: %v, %v; want none", claimedIDs(claimed), err)
		}
		claimed, err = db.Store.ClaimMail(ctx, mailNow.Add(time.Minute), mailNow.Add(time.Minute+lease), 10)
		if err != nil || !slices.Equal(claimedIDs(claimed), []int64{later.ID}) {
			t.Fatalf("claim when the last falls due: %v, %v; want [%d]", claimedIDs(claimed), err, later.ID)
		}

		// The senders of the first two died: once their leases run out, the rows are due again,
		// with a second attempt counted.
		claimed, err = db.Store.ClaimMail(ctx, mailNow.Add(lease), mailNow.Add(2*lease), 10)
		if err != nil || !slices.Equal(claimedIDs(claimed), []int64{early.ID, onTime.ID}) {
			t.Fatalf("claim after the leases ran out: %v, %v; want [%d %d]", claimedIDs(claimed), err, early.ID, onTime.ID)
		}
		for _, m := range claimed {
			if m.Attempts != 2 {
				t.Errorf("message %d after its second claim: %d attempts, want 2", m.ID, m.Attempts)
			}
		}
		if _, err := db.Store.ClaimMail(ctx, mailNow, mailNow, 0); err == nil {
			t.Error("ClaimMail with limit 0: no error")
		}
	})
}

func TestOutboxMarks(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		sent := enqueue(t, db, outboxMessage("sent", mailNow))
		retried := enqueue(t, db, outboxMessage("retried", mailNow))
		failed := enqueue(t, db, outboxMessage("failed", mailNow))
		lease := mailNow.Add(time.Minute)
		if claimed, err := db.Store.ClaimMail(ctx, mailNow, lease, 10); err != nil || len(claimed) != 3 {
			t.Fatalf("claim: %v, %v; want 3", claimedIDs(claimed), err)
		}

		if err := db.Store.MarkMailSent(ctx, sent.ID, mailNow.Add(time.Second)); err != nil {
			t.Fatalf("MarkMailSent: %v", err)
		}
		row := outboxRow(t, db, sent.ID)
		if row.SentAt == nil || !row.SentAt.Equal(mailNow.Add(time.Second)) || row.TextBody != "" || row.HTMLBody != "" {
			t.Errorf("after MarkMailSent: sent_at %v, bodies %q %q; want the time and no bodies (they hold link tokens)", row.SentAt, row.TextBody, row.HTMLBody)
		}
		wantErr(t, "MarkMailSent twice", db.Store.MarkMailSent(ctx, sent.ID, mailNow), models.ErrNotFound)
		wantErr(t, "MarkMailRetry of a sent message", db.Store.MarkMailRetry(ctx, sent.ID, 1, mailNow, "x"), models.ErrNotFound)

		next := mailNow.Add(2 * time.Second)
		wantErr(t, "MarkMailRetry with a stale attempt", db.Store.MarkMailRetry(ctx, retried.ID, 0, next, "x"), models.ErrNotFound)
		if err := db.Store.MarkMailRetry(ctx, retried.ID, 1, next, "dial tcp 127.0.0.1:1: connection refused"); err != nil {
			t.Fatalf("MarkMailRetry: %v", err)
		}
		row = outboxRow(t, db, retried.ID)
		if !row.NextAttemptAt.Equal(next) || row.LastError != "dial tcp 127.0.0.1:1: connection refused" || row.TextBody == "" {
			t.Errorf("after MarkMailRetry: next %v, last error %q, body kept %t; want %v, the error, the body", row.NextAttemptAt, row.LastError, row.TextBody != "", next)
		}

		wantErr(t, "MarkMailFailed with a stale attempt", db.Store.MarkMailFailed(ctx, failed.ID, 2, mailNow, "x"), models.ErrNotFound)
		if err := db.Store.MarkMailFailed(ctx, failed.ID, 1, mailNow.Add(time.Second), "550 no such mailbox"); err != nil {
			t.Fatalf("MarkMailFailed: %v", err)
		}
		row = outboxRow(t, db, failed.ID)
		if row.FailedAt == nil || row.LastError != "550 no such mailbox" || row.TextBody != "" || row.HTMLBody != "" {
			t.Errorf("after MarkMailFailed: failed_at %v, last error %q, bodies %q %q", row.FailedAt, row.LastError, row.TextBody, row.HTMLBody)
		}
		wantErr(t, "MarkMailRetry of a failed message", db.Store.MarkMailRetry(ctx, failed.ID, 1, mailNow, "x"), models.ErrNotFound)
		wantErr(t, "MarkMailSent of an unknown message", db.Store.MarkMailSent(ctx, failed.ID+100, mailNow), models.ErrNotFound)

		if n, err := db.Store.PendingMail(ctx); err != nil || n != 1 {
			t.Errorf("PendingMail: %d, %v; want 1 (the retried one)", n, err)
		}
		claimed, err := db.Store.ClaimMail(ctx, mailNow.Add(time.Hour), mailNow.Add(2*time.Hour), 10)
		if err != nil || !slices.Equal(claimedIDs(claimed), []int64{retried.ID}) {
			t.Errorf("claim much later: %v, %v; want only the retried one [%d]", claimedIDs(claimed), err, retried.ID)
		}
	})
}

func TestOutboxPrune(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		old := mailNow.Add(-10 * 24 * time.Hour)
		var ids = map[string]int64{}
		for _, name := range []string{"sent-old-1", "sent-old-2", "sent-new", "failed-old", "failed-new", "pending-old"} {
			ids[name] = enqueue(t, db, outboxMessage(name, old)).ID
		}
		if claimed, err := db.Store.ClaimMail(ctx, mailNow, mailNow.Add(time.Minute), 10); err != nil || len(claimed) != 6 {
			t.Fatalf("claim: %v, %v", claimedIDs(claimed), err)
		}
		for name, at := range map[string]time.Time{"sent-old-1": old, "sent-old-2": old, "sent-new": mailNow} {
			if err := db.Store.MarkMailSent(ctx, ids[name], at); err != nil {
				t.Fatal(err)
			}
		}
		for name, at := range map[string]time.Time{"failed-old": old, "failed-new": mailNow} {
			if err := db.Store.MarkMailFailed(ctx, ids[name], 1, at, "gave up"); err != nil {
				t.Fatal(err)
			}
		}

		n, err := db.Store.PruneMail(ctx, mailNow.Add(-7*24*time.Hour), 1)
		if err != nil || n != 3 {
			t.Errorf("PruneMail: %d, %v; want 3 (two sent and one failed, old)", n, err)
		}
		var left []int64
		db.Store.DB().Raw("SELECT id FROM mail_outbox ORDER BY id").Scan(&left)
		if want := []int64{ids["sent-new"], ids["failed-new"], ids["pending-old"]}; !slices.Equal(left, want) {
			t.Errorf("rows after PruneMail: %v, want %v (recent ones and the pending one)", left, want)
		}
		if _, err := db.Store.PruneMail(ctx, mailNow, 0); err == nil {
			t.Error("PruneMail with batch 0: no error")
		}
	})
}

// TestOutboxConcurrentClaimsAreDisjoint: senders claiming at once never get the same message.
func TestOutboxConcurrentClaimsAreDisjoint(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		const messages, senders = 60, 4
		for i := range messages {
			enqueue(t, db, outboxMessage(fmt.Sprintf("user-%d", i), mailNow))
		}
		var mu sync.Mutex
		claims := map[int64]int{}
		var wg sync.WaitGroup
		errs := make(chan error, senders)
		for range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					claimed, err := db.Store.ClaimMail(ctx, mailNow, mailNow.Add(time.Hour), 3)
					if err != nil {
						errs <- err
						return
					}
					if len(claimed) == 0 {
						return
					}
					mu.Lock()
					for _, m := range claimed {
						claims[m.ID]++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("ClaimMail: %v", err)
		}
		if len(claims) != messages {
			t.Errorf("%d messages claimed, want all %d", len(claims), messages)
		}
		for id, n := range claims {
			if n != 1 {
				t.Errorf("message %d claimed %d times", id, n)
			}
		}
	})
}

// TestOutboxDueTimesCompareExactly: due times with and without fractions of a second compare as
// times on both databases (SQLite compares the stored text).
func TestOutboxDueTimesCompareExactly(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		m := outboxMessage("fraction", mailNow)
		m.NextAttemptAt = mailNow.Add(1500 * time.Millisecond)
		enqueue(t, db, m)
		for _, at := range []time.Duration{time.Second, 1100 * time.Millisecond, 1499 * time.Millisecond} {
			// In another time zone, too: the store compares instants.
			claimed, err := db.Store.ClaimMail(ctx, mailNow.Add(at).In(time.FixedZone("UTC+5", 5*3600)), mailNow.Add(time.Hour), 10)
			if err != nil || len(claimed) != 0 {
				t.Errorf("claim at +%v: %v, %v; want nothing (due at +1.5s)", at, claimedIDs(claimed), err)
			}
		}
		claimed, err := db.Store.ClaimMail(ctx, mailNow.Add(1500*time.Millisecond), mailNow.Add(time.Hour), 10)
		if err != nil || len(claimed) != 1 || !claimed[0].NextAttemptAt.Equal(mailNow.Add(time.Hour)) {
			t.Errorf("claim at +1.5s: %v, %v; want it, leased for an hour", claimedIDs(claimed), err)
		}
	})
}
