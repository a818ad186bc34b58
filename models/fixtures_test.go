package models_test

import (
	"crypto/sha256"
	"errors"
	"slices"
	"testing"
	"time"

	gosqlite "github.com/glebarez/go-sqlite"
	"github.com/jackc/pgx/v5/pgconn"

	"gatehouse/models"
	"gatehouse/models/testdb"
)

// now is the contract tests' clock: every time they store or pass is relative to it.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// createUser stores a user with id and the email id@example.com.
func createUser(t *testing.T, db *testdb.DB, id string) *models.User {
	t.Helper()
	u := &models.User{ID: id, Email: id + "@example.com", DisplayName: id, PasswordHash: "$argon2id$not-a-real-hash",
		TokenVersion: 1, CreatedAt: now.Add(-30 * 24 * time.Hour), UpdatedAt: now.Add(-30 * 24 * time.Hour)}
	if err := db.Store.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("create user %s: %v", id, err)
	}
	return u
}

// session is a device session of userID on deviceID, last used at lastUsed and live at now until
// changed: its absolute expiry is 30 days after now.
func session(id, userID, deviceID string, lastUsed time.Time) *models.DeviceSession {
	return &models.DeviceSession{ID: id, UserID: userID, DeviceID: deviceID, DeviceName: "Firefox on Linux",
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", CreatedIP: "192.0.2.1", LastIP: "192.0.2.1",
		CreatedAt: lastUsed.Add(-time.Hour), LastUsedAt: lastUsed, ExpiresAt: now.Add(30 * 24 * time.Hour), AuthenticatedAt: lastUsed.Add(-time.Hour),
		TokenHash: tokenHash("live-" + id), TokenExpiresAt: now.Add(14 * 24 * time.Hour)}
}

func createSession(t *testing.T, db *testdb.DB, d *models.DeviceSession) *models.DeviceSession {
	t.Helper()
	if err := db.Store.CreateSession(t.Context(), d); err != nil {
		t.Fatalf("create session %s: %v", d.ID, err)
	}
	return d
}

func revokeSession(t *testing.T, db *testdb.DB, id string, at time.Time) {
	t.Helper()
	if ok, err := db.Store.RevokeSession(t.Context(), id, "signed_out", at); err != nil || !ok {
		t.Fatalf("revoke session %s: %v, %v", id, ok, err)
	}
}

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

func sessionByID(t *testing.T, db *testdb.DB, id string) *models.DeviceSession {
	t.Helper()
	d, err := db.Store.SessionByID(t.Context(), id)
	if err != nil {
		t.Fatalf("session %s: %v", id, err)
	}
	return d
}

func idsOf(list []models.DeviceSession) []string {
	ids := make([]string, len(list))
	for i, d := range list {
		ids[i] = d.ID
	}
	return ids
}

func sorted(ids []string) []string {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return ids
}

// wantErr fails the test unless err is want (errors.Is).
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: %v, want %v", what, err, want)
	}
}

// driverCode is the code the database's own error carries under err: the SQLSTATE of a
// *pgconn.PgError, or SQLite's extended result code; "" when there is none.
func driverCode(err error) any {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	var liteErr *gosqlite.Error
	if errors.As(err, &liteErr) {
		return liteErr.Code()
	}
	return ""
}
