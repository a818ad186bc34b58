package models

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"
)

//go:embed migrations
var migrationFiles embed.FS

// Migrate applies, in order and each in its own transaction, every embedded migration of this
// store's dialect that is not yet recorded in schema_migrations. Running it twice is a no-op.
// It returns the versions it applied.
func (s *Store) Migrate(ctx context.Context) ([]string, error) {
	versions, err := s.migrationVersions()
	if err != nil {
		return nil, err
	}
	return s.applyMigrations(ctx, versions)
}

// migrateTo is Migrate that stops after version last (as in "0002_revocation_notify"): tests
// build a database at an earlier schema with it, to migrate from there.
func (s *Store) migrateTo(ctx context.Context, last string) ([]string, error) {
	versions, err := s.migrationVersions()
	if err != nil {
		return nil, err
	}
	i := slices.Index(versions, last)
	if i < 0 {
		return nil, fmt.Errorf("no migration %q for %s", last, s.dialect)
	}
	return s.applyMigrations(ctx, versions[:i+1])
}

// migrationVersions lists the embedded migrations of this store's dialect, oldest first.
func (s *Store) migrationVersions() ([]string, error) {
	entries, err := fs.ReadDir(migrationFiles, s.migrationDir())
	if err != nil {
		return nil, err
	}
	var versions []string
	for _, e := range entries {
		versions = append(versions, strings.TrimSuffix(e.Name(), ".sql"))
	}
	slices.Sort(versions)
	return versions, nil
}

func (s *Store) migrationDir() string { return "migrations/" + string(s.dialect) }

func (s *Store) applyMigrations(ctx context.Context, versions []string) ([]string, error) {
	if err := s.with(ctx).Exec(`CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at ` +
		s.timeType() + ` NOT NULL)`).Error; err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", translate(err))
	}
	var applied []string
	for _, version := range versions {
		done, err := s.applyMigration(ctx, s.migrationDir()+"/"+version+".sql", version)
		if err != nil {
			return applied, fmt.Errorf("migration %s: %w", version, err)
		}
		if done {
			applied = append(applied, version)
		}
	}
	if len(applied) > 0 && s.dialect == Postgres {
		s.dropIdleConnections()
	}
	return applied, nil
}

// dropIdleConnections closes the pool's idle connections after a schema change: pgx caches each
// statement's plan per connection, and a plan made before an ALTER that changes a table's columns
// fails afterwards ("cached plan must not change result type", 0A000). New connections plan anew.
// Other processes still holding such plans are not reached (see docs/DESIGN.md, rolling upgrades).
func (s *Store) dropIdleConnections() {
	sqlDB, err := s.db.DB()
	if err != nil {
		return
	}
	stats := sqlDB.Stats()
	sqlDB.SetMaxIdleConns(0)
	sqlDB.SetMaxIdleConns(max(stats.MaxOpenConnections, 2))
}

func (s *Store) applyMigration(ctx context.Context, path, version string) (bool, error) {
	body, err := migrationFiles.ReadFile(path)
	if err != nil {
		return false, err
	}
	applied := false
	err = s.InTx(ctx, func(tx *Store) error {
		if tx.dialect == Postgres {
			// Two processes migrating at once queue here instead of racing.
			if err := tx.db.Exec(`SELECT pg_advisory_xact_lock(7175546)`).Error; err != nil {
				return err
			}
		}
		var n int64
		if err := tx.db.Raw(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		if err := tx.db.Exec(string(body)).Error; err != nil {
			return err
		}
		applied = true
		return tx.db.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, version, time.Now().UTC()).Error
	})
	return applied, err
}

func (s *Store) timeType() string {
	if s.dialect == Postgres {
		return "TIMESTAMPTZ"
	}
	return "DATETIME"
}
