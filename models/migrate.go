package models

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"
)

//go:embed migrations
var migrationFiles embed.FS

// Migrate applies, in order and each in its own transaction, every embedded migration of this
// store's dialect that is not yet recorded in schema_migrations. Running it twice is a no-op.
// It returns the versions it applied.
func (s *Store) Migrate(ctx context.Context) ([]string, error) {
	if err := s.with(ctx).Exec(`CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at ` +
		s.timeType() + ` NOT NULL)`).Error; err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", translate(err))
	}
	dir := "migrations/" + string(s.dialect)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	var applied []string
	for _, e := range entries {
		version := strings.TrimSuffix(e.Name(), ".sql")
		done, err := s.applyMigration(ctx, dir+"/"+e.Name(), version)
		if err != nil {
			return applied, fmt.Errorf("migration %s: %w", version, err)
		}
		if done {
			applied = append(applied, version)
		}
	}
	return applied, nil
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
