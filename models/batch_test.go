package models_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"gatehouse/models"
	"gatehouse/models/testdb"
)

// batchStores runs fn on a fresh PostgreSQL database once per way statements reach it: the
// default (prepared and cached), and the modes that work behind PgBouncer in transaction mode.
// RotateBatch is PostgreSQL-only: without GATEHOUSE_TEST_POSTGRES the test is skipped.
func batchStores(t *testing.T, fn func(t *testing.T, db *testdb.DB, store *models.Store)) {
	for _, mode := range []string{"", "exec", "simple"} {
		name := mode
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			db := testdb.Postgres(t)
			dbURL, err := models.WithStatements(db.URL, mode)
			if err != nil {
				t.Fatal(err)
			}
			store, err := models.Open(dbURL, models.Options{})
			if err != nil {
				t.Fatalf("open with statements %q: %v", mode, err)
			}
			t.Cleanup(func() { store.Close() })
			fn(t, db, store)
		})
	}
}

// eachBatchStore runs fn on SQLite, where a batch is one transaction of guarded statements
// (RotateGuardedTogether), then as batchStores does on PostgreSQL (RotateBatch).
func eachBatchStore(t *testing.T, fn func(t *testing.T, db *testdb.DB, store *models.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		db := testdb.SQLite(t)
		fn(t, db, db.Store)
	})
	batchStores(t, fn)
}

// rotateTogether rotates a batch the way the store's database does.
func rotateTogether(ctx context.Context, store *models.Store, ps []models.RotateParams) ([]*models.Rotation, error) {
	if store.Dialect() == models.SQLite {
		return store.RotateGuardedTogether(ctx, ps)
	}
	return store.RotateBatch(ctx, ps)
}

func rotateParams(token, deviceID, deviceName string) models.RotateParams {
	return models.RotateParams{Hash: tokenHash(token), SuccessorHash: tokenHash("next-" + token), Now: now,
		IdleExpiry: now.Add(14 * 24 * time.Hour), IP: "198.51.100.7", DeviceID: deviceID, DeviceName: deviceName}
}

func historyOf(t *testing.T, db *testdb.DB, sessionID string) int64 {
	t.Helper()
	return db.Count(t, "SELECT COUNT(*) FROM refresh_tokens WHERE session_id = ?", sessionID)
}

// TestRotateBatchAppliesTheGuardOfRotateInOneStatement puts one refresh of each kind in one
// batch: each is rotated or refused exactly as rotateStatement would, and each rotation records
// its successor in the history.
func TestRotateBatchAppliesTheGuardOfRotateInOneStatement(t *testing.T) {
	eachBatchStore(t, func(t *testing.T, db *testdb.DB, store *models.Store) {
		createUser(t, db, "u1")
		createUser(t, db, "u2")
		live := createSession(t, db, session("live", "u1", "dev-live", now.Add(-time.Hour)))
		capped := session("capped", "u1", "dev-capped", now.Add(-time.Hour))
		capped.ExpiresAt = now.Add(time.Hour) // the successor's idle expiry stops at the absolute one
		createSession(t, db, capped)
		named := session("named", "u1", "dev-named", now.Add(-time.Hour))
		named.UserNamed, named.DeviceName = true, "My laptop"
		createSession(t, db, named)
		createSession(t, db, session("otherdev", "u1", "dev-other", now.Add(-time.Hour)))
		createSession(t, db, session("revoked", "u1", "dev-revoked", now.Add(-time.Hour)))
		revokeSession(t, db, "revoked", now.Add(-time.Minute))
		idle := session("idle", "u1", "dev-idle", now.Add(-time.Hour))
		idle.TokenExpiresAt = now // not after now: expired
		createSession(t, db, idle)
		old := session("old", "u1", "dev-old", now.Add(-time.Hour))
		old.ExpiresAt = now.Add(-time.Second)
		createSession(t, db, old)
		createSession(t, db, session("disabled", "u2", "dev-disabled", now.Add(-time.Hour)))
		// Only the user is disabled, its session left live, so that the guard's own clause on
		// the user refuses it (DisableUser would sign the session out too).
		if err := db.Store.DB().Exec("UPDATE users SET disabled_at = ? WHERE id = ?", now.Add(-time.Minute), "u2").Error; err != nil {
			t.Fatal(err)
		}

		batch := []models.RotateParams{
			rotateParams("live-live", "dev-live", "Pixel 8"),
			rotateParams("live-capped", "", ""),
			rotateParams("live-named", "", "Pixel 8"),
			rotateParams("live-otherdev", "dev-somewhere-else", ""),
			rotateParams("live-revoked", "", ""),
			rotateParams("live-idle", "", ""),
			rotateParams("live-old", "", ""),
			rotateParams("live-disabled", "", ""),
			rotateParams("never-issued", "", ""),
		}
		got, err := rotateTogether(t.Context(), store, batch)
		if err != nil {
			t.Fatalf("rotate batch: %v", err)
		}
		if len(got) != len(batch) {
			t.Fatalf("%d results for %d refreshes", len(got), len(batch))
		}
		wantRotated := map[int]string{0: "live", 1: "capped", 2: "named"}
		for i, r := range got {
			id, want := wantRotated[i]
			switch {
			case want && r == nil:
				t.Errorf("refresh %d (session %s) was refused", i, id)
			case want && r.SessionID != id:
				t.Errorf("refresh %d rotated session %s, want %s", i, r.SessionID, id)
			case !want && r != nil:
				t.Errorf("refresh %d (%x) rotated session %s: the guard should refuse it", i, batch[i].Hash[:4], r.SessionID)
			}
		}
		if t.Failed() {
			return
		}

		if r := got[0]; r.UserID != "u1" || r.TokenVersion != 1 || r.AMR != "pwd" || !r.TokenExpiresAt.Equal(batch[0].IdleExpiry) {
			t.Errorf("rotation of live = %+v", r)
		}
		d := sessionByID(t, db, "live")
		if !bytes.Equal(d.TokenHash, batch[0].SuccessorHash) || !bytes.Equal(d.PrevTokenHash, batch[0].Hash) ||
			d.RotatedAt == nil || !d.RotatedAt.Equal(now) || !d.LastUsedAt.Equal(now) || d.LastIP != "198.51.100.7" || d.DeviceName != "Pixel 8" {
			t.Errorf("session live after the batch: %+v", d)
		}
		if _ = live; !got[1].TokenExpiresAt.Equal(capped.ExpiresAt) {
			t.Errorf("successor of capped expires at %v, want the session's absolute expiry %v", got[1].TokenExpiresAt, capped.ExpiresAt)
		}
		if d := sessionByID(t, db, "named"); d.DeviceName != "My laptop" {
			t.Errorf("a name the user gave was replaced by %q", d.DeviceName)
		}
		for _, id := range []string{"live", "capped", "named"} {
			if n := historyOf(t, db, id); n != 2 {
				t.Errorf("session %s has %d tokens in its history, want 2", id, n)
			}
		}
		n := db.Count(t, "SELECT COUNT(*) FROM refresh_tokens WHERE token_hash = ? AND expires_at = ?", batch[1].SuccessorHash, capped.ExpiresAt)
		if n != 1 {
			t.Errorf("the successor of capped is not in the history with the capped expiry")
		}
		for _, id := range []string{"otherdev", "revoked", "idle", "old", "disabled"} {
			if d := sessionByID(t, db, id); !bytes.Equal(d.TokenHash, tokenHash("live-"+id)) || d.RotatedAt != nil {
				t.Errorf("refused session %s was changed: %+v", id, d)
			}
			if n := historyOf(t, db, id); n != 1 {
				t.Errorf("refused session %s has %d tokens in its history, want 1", id, n)
			}
		}
	})
}

// TestRotateBatchRotatesATokenPresentedTwiceOnce: two refreshes of one token in a batch rotate
// the family once; the other is refused (its caller then finds a grace retry).
func TestRotateBatchRotatesATokenPresentedTwiceOnce(t *testing.T) {
	eachBatchStore(t, func(t *testing.T, db *testdb.DB, store *models.Store) {
		createUser(t, db, "u1")
		createSession(t, db, session("s1", "u1", "dev-1", now.Add(-time.Hour)))
		createSession(t, db, session("s2", "u1", "dev-2", now.Add(-time.Hour)))
		batch := []models.RotateParams{rotateParams("live-s1", "", ""), rotateParams("live-s2", "", ""), rotateParams("live-s1", "", "")}
		got, err := rotateTogether(t.Context(), store, batch)
		if err != nil {
			t.Fatalf("rotate batch: %v", err)
		}
		if (got[0] == nil) == (got[2] == nil) {
			t.Fatalf("token presented twice: rotations %v and %v, want exactly one", got[0], got[2])
		}
		if got[1] == nil || got[1].SessionID != "s2" {
			t.Fatalf("the other session's refresh: %+v", got[1])
		}
		if n := historyOf(t, db, "s1"); n != 2 {
			t.Errorf("s1 has %d tokens in its history, want 2 (one rotation)", n)
		}
	})
}

// TestRotateBatchSkipsSessionsLockedElsewhere: a session another transaction holds is refused
// without waiting (its caller's transaction waits instead), and the rest of the batch goes on.
// Were the batch to wait for the lock, this test would hang: the lock is released only after.
func TestRotateBatchSkipsSessionsLockedElsewhere(t *testing.T) {
	batchStores(t, func(t *testing.T, db *testdb.DB, store *models.Store) {
		createUser(t, db, "u1")
		createSession(t, db, session("held", "u1", "dev-1", now.Add(-time.Hour)))
		createSession(t, db, session("free", "u1", "dev-2", now.Add(-time.Hour)))
		err := db.Store.InTx(t.Context(), func(tx *models.Store) error {
			if _, err := tx.FamilyOf(t.Context(), tokenHash("live-held")); err != nil {
				return err
			}
			got, err := store.RotateBatch(t.Context(), []models.RotateParams{rotateParams("live-held", "", ""), rotateParams("live-free", "", "")})
			if err != nil {
				return fmt.Errorf("rotate batch: %w", err)
			}
			if got[0] != nil {
				t.Errorf("the held session was rotated under another transaction's lock")
			}
			if got[1] == nil {
				t.Errorf("the free session was not rotated")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n := historyOf(t, db, "held"); n != 1 {
			t.Errorf("held has %d tokens in its history, want 1", n)
		}
	})
}

// TestRotateBatchIsOneTransaction: when the statement fails (here a successor already in the
// history), nothing of the batch is rotated, and the error says so.
func TestRotateBatchIsOneTransaction(t *testing.T) {
	eachBatchStore(t, func(t *testing.T, db *testdb.DB, store *models.Store) {
		createUser(t, db, "u1")
		createSession(t, db, session("s1", "u1", "dev-1", now.Add(-time.Hour)))
		createSession(t, db, session("s2", "u1", "dev-2", now.Add(-time.Hour)))
		clash := rotateParams("live-s2", "", "")
		holder := session("s3", "u1", "dev-3", now.Add(-time.Hour))
		holder.TokenHash = clash.SuccessorHash // recorded in the history as it is created
		createSession(t, db, holder)
		_, err := rotateTogether(t.Context(), store, []models.RotateParams{rotateParams("live-s1", "", ""), clash})
		if !errors.Is(err, models.ErrConflict) {
			t.Fatalf("rotate batch with a clashing successor: %v, want ErrConflict", err)
		}
		if d := sessionByID(t, db, "s1"); !bytes.Equal(d.TokenHash, tokenHash("live-s1")) {
			t.Errorf("s1 was rotated by a batch that failed")
		}
		if n := historyOf(t, db, "s1"); n != 1 {
			t.Errorf("s1 has %d tokens in its history, want 1", n)
		}
	})
}

func TestRotateBatchIsPostgresOnly(t *testing.T) {
	db := testdb.SQLite(t)
	if _, err := db.Store.RotateBatch(context.Background(), []models.RotateParams{rotateParams("t", "", "")}); err == nil {
		t.Fatal("RotateBatch on SQLite: no error")
	}
}
