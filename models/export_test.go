package models

import (
	"context"

	"gorm.io/gorm"
)

// Translate lets the tests in models_test classify errors that only a raw driver connection can
// produce (SQLite's SQLITE_BUSY, a query killed under a pool), through the one classifier.
var Translate = translate

// MigrateTo lets the migration tests build a database at an earlier schema version.
func (s *Store) MigrateTo(ctx context.Context, last string) ([]string, error) {
	return s.migrateTo(ctx, last)
}

// ReadConnections is the SQLite store's read-only pool.
func ReadConnections(s *Store) *gorm.DB { return s.reads }
