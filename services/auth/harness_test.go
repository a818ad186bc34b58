package auth_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"gatehouse/models/testdb"
	"gatehouse/services/auth"
	"gatehouse/services/clock"
)

var testConfig = auth.Config{
	Issuer:         "http://127.0.0.1:8080",
	AccessTTL:      10 * time.Minute,
	RefreshIdleTTL: 14 * 24 * time.Hour,
	SessionMaxAge:  30 * 24 * time.Hour,
	RefreshGrace:   10 * time.Second,
}

// fastPasswords keeps argon2id but at a cost tests can afford.
var fastPasswords = auth.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1}

type env struct {
	db    *testdb.DB
	svc   *auth.Service
	clock *clock.Manual
	ctx   context.Context
	// transactional: every refresh takes the transactional path (eachRefreshPath)
	transactional bool
}

func newEnv(t *testing.T, db *testdb.DB) *env {
	t.Helper()
	c := clock.NewManual(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	return &env{db: db, svc: newService(t, db, c, t.TempDir()), clock: c, ctx: context.Background()}
}

// newService builds a service on db; two services on one db and key dir act as two instances.
func newService(t testing.TB, db *testdb.DB, c *clock.Manual, keyDir string) *auth.Service {
	t.Helper()
	return newServiceWith(t, db, c, keyDir, nil)
}

// newServiceWith is newService with its configuration and collaborators changed by adjust.
func newServiceWith(t testing.TB, db *testdb.DB, c *clock.Manual, keyDir string, adjust func(*auth.Config, *auth.Deps)) *auth.Service {
	t.Helper()
	keys, err := auth.OpenKeyRing(keyDir, rand.Reader, c.Now())
	if err != nil {
		t.Fatal(err)
	}
	pw, err := auth.NewPasswords(fastPasswords, rand.Reader, 4, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	cfg, deps := testConfig, auth.Deps{Store: db.Store, Keys: keys, Passwords: pw, Now: c.Now}
	if adjust != nil {
		adjust(&cfg, &deps)
	}
	return auth.New(cfg, deps)
}

const testPassword = "correct horse battery"

func (e *env) user(t *testing.T, email string) {
	t.Helper()
	if _, err := e.svc.CreateUser(e.ctx, email, "Test", testPassword); err != nil {
		t.Fatal(err)
	}
}

func (e *env) signIn(t *testing.T, email, device string) *auth.Issued {
	t.Helper()
	issued, err := e.svc.SignIn(e.ctx, email, testPassword, auth.Client{DeviceID: device, UserAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", IP: "192.0.2.1"})
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	return issued
}

func (e *env) refresh(token string) (*auth.Issued, error) {
	return e.svc.Refresh(e.ctx, token, auth.Client{IP: "192.0.2.2"})
}

// eachRefreshPath runs fn on SQLite and on PostgreSQL, twice on each, each time on a fresh
// database: with the guarded rotation first, and with every refresh forced down the
// transactional path, so that one suite holds both paths to the same token rules.
func eachRefreshPath(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	transactional := func(db *testdb.DB) func(t *testing.T) {
		return func(t *testing.T) {
			e := newEnv(t, db)
			auth.ForceTransactionalRefresh(e.svc)
			e.transactional = true
			fn(t, e)
		}
	}
	t.Run("sqlite", func(t *testing.T) { fn(t, newEnv(t, testdb.SQLite(t))) })
	t.Run("sqlite-transactional", func(t *testing.T) { transactional(testdb.SQLite(t))(t) })
	if testdb.PostgresURL(t) == "" {
		return
	}
	t.Run("postgres", func(t *testing.T) { fn(t, newEnv(t, testdb.Postgres(t))) })
	t.Run("postgres-transactional", func(t *testing.T) { transactional(testdb.Postgres(t))(t) })
}
