// Package testdb gives each test a fresh, migrated database: embedded SQLite always, and
// PostgreSQL when GATEHOUSE_TEST_POSTGRES names one (CI sets it; under CI=true it must).
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"gatehouse/models"
)

// EnvPostgres names the PostgreSQL server the tests use, e.g.
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const EnvPostgres = "GATEHOUSE_TEST_POSTGRES"

// DB is one test database.
type DB struct {
	Name  string        // "sqlite" or "postgres"
	URL   string        // DATABASE_URL that reaches it (the binary and the CLI use it)
	Store *models.Store // migrated, except under EachEmpty
}

// Each runs fn as a subtest once per available database.
func Each(t *testing.T, fn func(t *testing.T, db *DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	if url := PostgresURL(t); url != "" {
		t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
	}
}

// EachEmpty is Each with empty databases: no migration applied, so that a migration test can
// build an earlier schema and migrate from there.
func EachEmpty(t *testing.T, fn func(t *testing.T, db *DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, emptySQLite(t)) })
	if url := PostgresURL(t); url != "" {
		t.Run("postgres", func(t *testing.T) { fn(t, emptyPostgres(t, models.Options{})) })
	}
}

// PostgresURL is the configured server, or "" when tests should run on SQLite only. Under
// CI=true a missing server fails the test instead.
func PostgresURL(t testing.TB) string {
	u := os.Getenv(EnvPostgres)
	if u == "" && os.Getenv("CI") == "true" {
		t.Fatalf("%s is not set, and CI=true requires the PostgreSQL tests", EnvPostgres)
	}
	return u
}

// SQLite opens a fresh migrated SQLite file in the test's temporary directory.
func SQLite(t testing.TB) *DB {
	t.Helper()
	return migrated(t, emptySQLite(t))
}

func emptySQLite(t testing.TB) *DB {
	t.Helper()
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "test.db")
	return open(t, "sqlite", dbURL, models.Options{})
}

// Postgres creates a fresh schema on the configured server, dropped when the test ends.
func Postgres(t testing.TB) *DB {
	t.Helper()
	return PostgresWith(t, models.Options{})
}

// PostgresWith is Postgres with connection options (tests count round trips through Dial).
func PostgresWith(t testing.TB, opts models.Options) *DB {
	t.Helper()
	return migrated(t, emptyPostgres(t, opts))
}

func emptyPostgres(t testing.TB, opts models.Options) *DB {
	t.Helper()
	base := PostgresURL(t)
	if base == "" {
		t.Skipf("%s is not set: PostgreSQL tests skipped", EnvPostgres)
	}
	schema := "t_" + randomHex(t, 8)
	admin, err := models.Open(base, models.Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	if err := admin.DB().Exec("CREATE SCHEMA " + schema).Error; err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		admin.DB().Exec("DROP SCHEMA " + schema + " CASCADE")
		admin.Close()
	})
	return open(t, "postgres", WithSearchPath(base, schema), opts)
}

// WithSearchPath points a PostgreSQL URL at one schema.
func WithSearchPath(raw, schema string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func open(t testing.TB, name, dbURL string, opts models.Options) *DB {
	t.Helper()
	store, err := models.Open(dbURL, opts)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	t.Cleanup(func() { store.Close() })
	return &DB{Name: name, URL: dbURL, Store: store}
}

func migrated(t testing.TB, db *DB) *DB {
	t.Helper()
	if _, err := db.Store.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate %s: %v", db.Name, err)
	}
	return db
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// MustExec runs a statement or fails the test.
func (db *DB) MustExec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if err := db.Store.DB().Exec(sql, args...).Error; err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// Count returns the number of rows matching a query of the form SELECT COUNT(*) ...
func (db *DB) Count(t testing.TB, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.Store.DB().Raw(sql, args...).Scan(&n).Error; err != nil {
		t.Fatalf("%s: %v", sql, fmt.Errorf("count: %w", err))
	}
	return n
}
