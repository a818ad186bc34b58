package models_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"gatehouse/models"
	"gatehouse/models/testdb"
)

// The user contract, on every database.

func TestCreateUserEmailTakenIsConflict(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		first := createUser(t, db, "alice")

		again := *first
		again.ID = "alice-again"
		err := db.Store.CreateUser(ctx, &again)
		wantErr(t, "same email", err, models.ErrConflict)
		wantCode := map[string]any{"postgres": "23505", "sqlite": sqlite3.SQLITE_CONSTRAINT_UNIQUE}[db.Name]
		if code := driverCode(err); code != wantCode {
			t.Errorf("same email: the driver's error underneath has code %v, want %v (%v)", code, wantCode, err)
		}

		sameID := *first
		sameID.Email = "someone-else@example.com"
		err = db.Store.CreateUser(ctx, &sameID)
		wantErr(t, "same id", err, models.ErrConflict)

		if n := db.Count(t, "SELECT COUNT(*) FROM users"); n != 1 {
			t.Errorf("users after two conflicts: %d, want 1", n)
		}
		other := *first
		other.ID, other.Email = "bob", "bob@example.com"
		if err := db.Store.CreateUser(ctx, &other); err != nil {
			t.Errorf("another email: %v", err)
		}
	})
}

func TestUserLookups(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		alice := createUser(t, db, "alice")

		if u, err := db.Store.UserByEmail(ctx, alice.Email); err != nil || u.ID != alice.ID {
			t.Errorf("UserByEmail(%s): %+v, %v", alice.Email, u, err)
		}
		if u, err := db.Store.UserByID(ctx, alice.ID); err != nil || u.Email != alice.Email {
			t.Errorf("UserByID(%s): %+v, %v", alice.ID, u, err)
		}
		_, err := db.Store.UserByEmail(ctx, "nobody@example.com")
		wantErr(t, "UserByEmail(unknown)", err, models.ErrNotFound)
		_, err = db.Store.UserByID(ctx, "nobody")
		wantErr(t, "UserByID(unknown)", err, models.ErrNotFound)

		err = db.Store.InTx(ctx, func(tx *models.Store) error {
			if u, err := tx.LockUser(ctx, alice.ID); err != nil || u.Email != alice.Email {
				t.Errorf("LockUser(%s): %+v, %v", alice.ID, u, err)
			}
			_, err := tx.LockUser(ctx, "nobody")
			return err
		})
		wantErr(t, "LockUser(unknown), through InTx", err, models.ErrNotFound)
	})
}

// SetPassword, SignOutEverywhere and DisableUser each bump token_version by one and return it,
// and sign out every live session of that user, and of that user alone, with the reason given
// (the one-statement rotation relies on it: see rotateStatement).
func TestTokenVersionBumps(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		alice := createUser(t, db, "alice")
		bob := createUser(t, db, "bob")
		createSession(t, db, session("bob-1", bob.ID, "bob-d1", now.Add(-time.Hour)))

		steps := []struct {
			name, reason string
			bump         func() (int64, []string, error)
		}{
			{"SetPassword", "password_changed", func() (int64, []string, error) {
				return db.Store.SetPassword(ctx, alice.ID, "$argon2id$new", "password_changed", now)
			}},
			{"SignOutEverywhere", "signed_out_everywhere", func() (int64, []string, error) {
				return db.Store.SignOutEverywhere(ctx, alice.ID, "signed_out_everywhere", now)
			}},
			{"DisableUser", models.EventUserDisabled, func() (int64, []string, error) { return db.Store.DisableUser(ctx, alice.ID, now) }},
		}
		for i, step := range steps {
			live := []string{fmt.Sprintf("%d-a", i), fmt.Sprintf("%d-b", i)}
			for _, id := range live {
				createSession(t, db, session(id, alice.ID, "dev-"+id, now.Add(-time.Hour)))
			}
			v, ended, err := step.bump()
			if err != nil || v != int64(i+2) {
				t.Errorf("%s: version %d, %v; want %d", step.name, v, err, i+2)
			}
			slices.Sort(ended)
			if !slices.Equal(ended, live) {
				t.Errorf("%s: signed out %q, want alice's live sessions %q", step.name, ended, live)
			}
			for _, id := range live {
				if n := db.Count(t, "SELECT COUNT(*) FROM device_sessions WHERE id = ? AND revoked_at IS NOT NULL AND revoked_reason = ?", id, step.reason); n != 1 {
					t.Errorf("%s: session %s is not revoked with reason %q", step.name, id, step.reason)
				}
			}
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM device_sessions WHERE id = 'bob-1' AND revoked_at IS NULL"); n != 1 {
			t.Error("bob's session was signed out by alice's bumps")
		}
		u, err := db.Store.UserByID(ctx, alice.ID)
		if err != nil {
			t.Fatal(err)
		}
		if u.TokenVersion != 4 || u.PasswordHash != "$argon2id$new" || !u.Disabled() || !u.UpdatedAt.Equal(now) {
			t.Errorf("alice after the bumps: %+v", u)
		}
		if u, _ := db.Store.UserByID(ctx, bob.ID); u.TokenVersion != 1 || u.Disabled() {
			t.Errorf("bob was touched: %+v", u)
		}
		_, _, err = db.Store.SignOutEverywhere(ctx, "nobody", "signed_out_everywhere", now)
		wantErr(t, "SignOutEverywhere(unknown)", err, models.ErrNotFound)
	})
}

// SetDisplayName changes the name and updated_at of that user alone; an unknown user is ErrNotFound.
func TestSetDisplayName(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		alice := createUser(t, db, "alice")
		bob := createUser(t, db, "bob")

		if err := db.Store.SetDisplayName(ctx, alice.ID, "Alice Liddell", now); err != nil {
			t.Fatal(err)
		}
		u, err := db.Store.UserByID(ctx, alice.ID)
		if err != nil || u.DisplayName != "Alice Liddell" || !u.UpdatedAt.Equal(now) {
			t.Errorf("after SetDisplayName: %q updated at %v (%v), want %q at %v", u.DisplayName, u.UpdatedAt, err, "Alice Liddell", now)
		}
		if err := db.Store.SetDisplayName(ctx, alice.ID, "", now); err != nil {
			t.Fatal(err)
		}
		if u, _ := db.Store.UserByID(ctx, alice.ID); u.DisplayName != "" {
			t.Errorf("after clearing: %q, want no name", u.DisplayName)
		}
		if u, _ := db.Store.UserByID(ctx, bob.ID); u.DisplayName != bob.DisplayName || !u.UpdatedAt.Equal(bob.UpdatedAt) {
			t.Errorf("bob changed too: %q at %v", u.DisplayName, u.UpdatedAt)
		}
		wantErr(t, "SetDisplayName(unknown)", db.Store.SetDisplayName(ctx, "nobody", "x", now), models.ErrNotFound)
	})
}
