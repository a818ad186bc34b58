package models_test

import (
	"testing"

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

// SetPassword, BumpTokenVersion and DisableUser each bump token_version by one and return it.
func TestTokenVersionBumps(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		alice := createUser(t, db, "alice")
		bob := createUser(t, db, "bob")

		steps := []struct {
			name string
			bump func() (int64, error)
		}{
			{"SetPassword", func() (int64, error) { return db.Store.SetPassword(ctx, alice.ID, "$argon2id$new", now) }},
			{"BumpTokenVersion", func() (int64, error) { return db.Store.BumpTokenVersion(ctx, alice.ID, now) }},
			{"DisableUser", func() (int64, error) { return db.Store.DisableUser(ctx, alice.ID, now) }},
		}
		for i, step := range steps {
			if v, err := step.bump(); err != nil || v != int64(i+2) {
				t.Errorf("%s: version %d, %v; want %d", step.name, v, err, i+2)
			}
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
		_, err = db.Store.BumpTokenVersion(ctx, "nobody", now)
		wantErr(t, "BumpTokenVersion(unknown)", err, models.ErrNotFound)
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
