package models_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"gatehouse/models"
	"gatehouse/models/testdb"
)

// The pruning contract, on every database: what Prune deletes from each table, what it keeps, and
// that no statement deletes more than a batch.

const pruneBatch = 7

func TestPrune(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		cutoff, eventCutoff := now.Add(-24*time.Hour), now.Add(-90*24*time.Hour)
		for _, id := range []string{"alice", "bob", "carol"} {
			createUser(t, db, id)
		}

		// Sessions. Deleted: nine revoked and one expired before cutoff (ten: more than a batch).
		live := createSession(t, db, session("s-live", "alice", "d1", now.Add(-time.Hour)))
		var gone []string
		for i := range 9 {
			d := createSession(t, db, session(fmt.Sprintf("s-oldrev-%d", i), "alice", fmt.Sprintf("old-%d", i), now.Add(-72*time.Hour)))
			revokeSession(t, db, d.ID, cutoff.Add(-time.Duration(i+1)*time.Hour))
			gone = append(gone, d.ID)
		}
		oldExpired := session("s-oldexp", "bob", "d2", now.Add(-40*24*time.Hour))
		oldExpired.ExpiresAt, oldExpired.TokenExpiresAt = cutoff.Add(-time.Hour), cutoff.Add(-time.Hour)
		gone = append(gone, createSession(t, db, oldExpired).ID)
		createSession(t, db, session("s-newrev", "alice", "d3", now.Add(-2*time.Hour)))
		revokeSession(t, db, "s-newrev", now.Add(-time.Hour))
		newExpired := session("s-newexp", "bob", "d4", now.Add(-30*24*time.Hour))
		newExpired.ExpiresAt, newExpired.TokenExpiresAt = now.Add(-time.Hour), now.Add(-time.Hour)
		createSession(t, db, newExpired)

		// Token history of s-live: twenty tokens past their idle expiry, one replaced an hour
		// ago and still in its grace, and the live one. Deleted: the twenty, and the expired
		// tokens of s-oldexp and s-newexp (a session's token history goes before the session).
		var history []models.RefreshToken
		for i := range 20 {
			issued := now.Add(-time.Duration(40-i) * 24 * time.Hour)
			history = append(history, models.RefreshToken{TokenHash: tokenHash(fmt.Sprintf("old-%d", i)), SessionID: live.ID, IssuedAt: issued, ExpiresAt: issued.Add(14 * 24 * time.Hour)})
		}
		history = append(history, models.RefreshToken{TokenHash: tokenHash("prev"), SessionID: live.ID, IssuedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(time.Hour)})
		if err := db.Store.DB().Create(&history).Error; err != nil {
			t.Fatalf("token history: %v", err)
		}

		// Events. Deleted: bob's ten before eventCutoff, and alice's oldest twelve beyond the newest
		// EventsKeptPerUser (by id: they were recorded in this order).
		aliceEvents := events("alice", models.EventsKeptPerUser+12, now.Add(-time.Hour))
		bobEvents := append(events("bob", 10, eventCutoff.Add(-24*time.Hour)), events("bob", 2, now)...)
		carolEvents := events("carol", 3, now)
		for _, list := range [][]models.SecurityEvent{aliceEvents, bobEvents, carolEvents} {
			if err := db.Store.DB().CreateInBatches(&list, 200).Error; err != nil {
				t.Fatalf("events: %v", err)
			}
		}
		aliceKept := aliceEvents[12:]

		// Sign-in challenges: eight expired (deleted), one open (kept). Authenticator apps: nine
		// never confirmed and older than EnrolmentsKept (deleted); one such but recent, and one
		// confirmed long ago (kept).
		alice := "alice"
		for i := range 9 {
			expires := now.Add(-time.Minute)
			if i == 8 {
				expires = now.Add(time.Minute)
			}
			ch := &models.AuthChallenge{IDHash: tokenHash(fmt.Sprintf("challenge-%d", i)), Purpose: models.ChallengeSecondFactor, UserID: &alice,
				CreatedAt: expires.Add(-5 * time.Minute), ExpiresAt: expires}
			if err := db.Store.CreateChallenge(ctx, ch); err != nil {
				t.Fatalf("challenge: %v", err)
			}
		}
		longAgo := now.Add(-models.EnrolmentsKept - time.Hour)
		for i := range 11 {
			f := &models.Factor{ID: fmt.Sprintf("f-%02d", i), UserID: "alice", Kind: models.FactorTOTP, Name: "app", Secret: []byte{1}, CreatedAt: longAgo}
			switch i {
			case 9:
				f.CreatedAt = now.Add(-time.Hour)
			case 10:
				f.ConfirmedAt = &longAgo
			}
			if err := db.Store.CreateFactor(ctx, f); err != nil {
				t.Fatalf("factor: %v", err)
			}
		}

		// A batch below one would never finish: refused, and nothing deleted.
		before := db.Count(t, "SELECT COUNT(*) FROM security_events")
		if _, err := db.Store.Prune(ctx, now, cutoff, eventCutoff, 0); err == nil {
			t.Errorf("Prune with batch 0: no error")
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM security_events"); n != before {
			t.Errorf("Prune with batch 0 deleted %d events", before-n)
		}

		deletes := recordDeletes(t, db)
		r, err := db.Store.Prune(ctx, now, cutoff, eventCutoff, pruneBatch)
		if want := (models.PruneResult{Tokens: 22, Sessions: 10, Events: 22, Challenges: 8, Enrolments: 9}); err != nil || r != want {
			t.Errorf("Prune: %+v, %v; want %+v", r, err, want)
		}

		if len(*deletes) == 0 || slices.Max(*deletes) != pruneBatch {
			t.Errorf("rows deleted per statement: %v; want none above the batch of %d, and full batches while there is more", *deletes, pruneBatch)
		}

		var sessions []string
		db.Store.DB().Raw("SELECT id FROM device_sessions ORDER BY id").Scan(&sessions)
		if want := []string{"s-live", "s-newexp", "s-newrev"}; !slices.Equal(sessions, want) {
			t.Errorf("sessions kept: %v, want %v", sessions, want)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM refresh_tokens WHERE session_id = ?", live.ID); n != 2 {
			t.Errorf("s-live's token history: %d rows, want 2 (the live token and the one in its grace)", n)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM refresh_tokens WHERE expires_at < ?", now); n != 0 {
			t.Errorf("%d expired tokens kept", n)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM refresh_tokens WHERE session_id NOT IN (SELECT id FROM device_sessions)"); n != 0 {
			t.Errorf("%d tokens kept of deleted sessions %v", n, gone)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM refresh_tokens WHERE session_id = 's-newrev'"); n != 1 {
			t.Errorf("s-newrev's token history: %d rows, want 1", n)
		}

		for _, c := range []struct {
			user string
			kept []models.SecurityEvent
		}{{"alice", aliceKept}, {"bob", bobEvents[10:]}, {"carol", carolEvents}} {
			var ids []int64
			db.Store.DB().Raw("SELECT id FROM security_events WHERE user_id = ? ORDER BY id", c.user).Scan(&ids)
			if want := eventIDs(c.kept); !slices.Equal(ids, want) {
				t.Errorf("%s's events kept: %d (ids %v…), want %d (ids %v…)", c.user, len(ids), head(ids), len(want), head(want))
			}
		}

		var factors []string
		db.Store.DB().Raw("SELECT id FROM factors ORDER BY id").Scan(&factors)
		if want := []string{"f-09", "f-10"}; !slices.Equal(factors, want) {
			t.Errorf("factors kept: %v, want %v", factors, want)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM auth_challenges WHERE expires_at > ?", now); n != 1 {
			t.Errorf("open challenges kept: %d, want 1", n)
		}

		if r, err := db.Store.Prune(ctx, now, cutoff, eventCutoff, pruneBatch); err != nil || r != (models.PruneResult{}) {
			t.Errorf("second Prune: %+v, %v; want nothing left to delete", r, err)
		}
	})
}

// events makes n events of a user, a second apart from start on.
func events(userID string, n int, start time.Time) []models.SecurityEvent {
	list := make([]models.SecurityEvent, n)
	for i := range list {
		list[i] = models.SecurityEvent{UserID: userID, SessionID: "s-1", DeviceName: "Firefox on Linux", Kind: models.EventSignedIn, IP: "192.0.2.1",
			CreatedAt: start.Add(time.Duration(i) * time.Second)}
	}
	return list
}

func eventIDs(list []models.SecurityEvent) []int64 {
	ids := make([]int64, len(list))
	for i, e := range list {
		ids[i] = e.ID
	}
	return ids
}

func head(ids []int64) []int64 { return ids[:min(len(ids), 3)] }

// recordDeletes collects the rows each DELETE statement on db's store deletes from now on.
func recordDeletes(t *testing.T, db *testdb.DB) *[]int64 {
	t.Helper()
	var deleted []int64
	err := db.Store.DB().Callback().Raw().After("gorm:raw").Register("test:record_deletes", func(tx *gorm.DB) {
		if strings.HasPrefix(strings.TrimSpace(tx.Statement.SQL.String()), "DELETE") {
			deleted = append(deleted, tx.Statement.RowsAffected)
		}
	})
	if err != nil {
		t.Fatalf("register callback: %v", err)
	}
	return &deleted
}
