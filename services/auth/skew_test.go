package auth_test

import (
	"errors"
	"testing"
	"time"

	"gatehouse/models"
	"gatehouse/models/testdb"
	"gatehouse/services/auth"
	"gatehouse/services/clock"
)

// TestClockSkewBetweenInstances (finding 10): an instance whose clock is a little behind accepts
// the fresh access tokens of one whose clock is ahead; a token "issued" far in the future is refused.
func TestClockSkewBetweenInstances(t *testing.T) {
	db := testdb.SQLite(t)
	keyDir := t.TempDir()
	behind := clock.NewManual(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	ahead := clock.NewManual(behind.Now().Add(20 * time.Second))
	signer := newService(t, db, ahead, keyDir)
	checker := newService(t, db, behind, keyDir)
	if _, err := signer.CreateUser(t.Context(), "ann@example.com", "", testPassword); err != nil {
		t.Fatal(err)
	}
	issued, err := signer.SignIn(t.Context(), "ann@example.com", testPassword, auth.Client{DeviceID: "device-1", IP: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := checker.Verify(t.Context(), issued.AccessToken); err != nil {
		t.Fatalf("a token signed 20 s ahead of this instance's clock: %v", err)
	}
	ahead.Advance(time.Hour)
	far, err := signer.SignIn(t.Context(), "ann@example.com", testPassword, auth.Client{DeviceID: "device-2", IP: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := checker.Verify(t.Context(), far.AccessToken); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("a token issued an hour in the future: %v, want ErrInvalidToken", err)
	}
}

// TestEventsPerUserAreBounded (finding 7): prune keeps a user's newest
// models.EventsKeptPerUser events; other users' are untouched.
func TestEventsPerUserAreBounded(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		e := newEnv(t, db)
		e.user(t, "ann@example.com")
		e.user(t, "bob@example.com")
		ann, _ := e.svc.SignIn(e.ctx, "ann@example.com", testPassword, auth.Client{DeviceID: "device-a"})
		bob, _ := e.svc.SignIn(e.ctx, "bob@example.com", testPassword, auth.Client{DeviceID: "device-b"})
		for i := range models.EventsKeptPerUser + 20 {
			kind := models.EventSignedIn
			if i == models.EventsKeptPerUser+19 {
				kind = models.EventTokenReused
			}
			if err := db.Store.RecordEvent(e.ctx, &models.SecurityEvent{UserID: ann.UserID, Kind: kind, CreatedAt: e.clock.Now()}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.svc.Prune(e.ctx, auth.PruneConfig{RevokedRetention: time.Hour, EventRetention: 90 * 24 * time.Hour, Batch: 7}); err != nil {
			t.Fatal(err)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM security_events WHERE user_id = ?", ann.UserID); n != models.EventsKeptPerUser {
			t.Fatalf("ann has %d events, want %d", n, models.EventsKeptPerUser)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM security_events WHERE user_id = ? AND kind = 'token_reused'", ann.UserID); n != 1 {
			t.Fatal("the newest event was dropped")
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM security_events WHERE user_id = ?", bob.UserID); n != 2 {
			t.Fatalf("bob has %d events, want his account creation and his one sign-in", n)
		}
	})
}
