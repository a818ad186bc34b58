package models

import "context"

// DataVersion returns SQLite's PRAGMA data_version: it changes when another connection (another
// process on the same file) commits, and stays put for this connection's own commits.
func (s *Store) DataVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.with(ctx).Raw("PRAGMA data_version").Scan(&v).Error
	return v, translate(err)
}
