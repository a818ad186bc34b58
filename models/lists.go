package models

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// The lists a page shows on every load (a user's devices, their recent events) are read below
// GORM, with their columns named and scanned one by one: on GET /devices GORM's reflection and
// statement building cost more than the queries themselves.

// sessionColumns are DeviceSession's columns, in the order querySessions scans them.
const sessionColumns = `id, user_id, device_id, device_name, user_named, user_agent, created_ip, last_ip,
	created_at, last_used_at, expires_at, authenticated_at, token_hash, token_expires_at,
	prev_token_hash, rotated_at, revoked_at, revoked_reason, amr`

// eventColumns are SecurityEvent's columns, in the order queryEvents scans them.
const eventColumns = `id, user_id, session_id, device_name, kind, ip, detail, created_at`

// readPool is the connection pool read uses, for queries below GORM: inside a transaction, the
// transaction (GORM keeps it in Statement.ConnPool; db.ConnPool is the pool even then).
func (s *Store) readPool() gorm.ConnPool {
	if s.reads != nil {
		return s.reads.Statement.ConnPool
	}
	return s.db.Statement.ConnPool
}

// numbered writes a query's "?" placeholders as PostgreSQL's $1, $2, … (SQLite takes "?" as is).
// The queries it is given have no "?" inside a string.
func (s *Store) numbered(query string) string {
	if s.dialect != Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// querySessions runs a query of sessionColumns on the read pool.
func (s *Store) querySessions(ctx context.Context, query string, args ...any) ([]DeviceSession, error) {
	rows, err := s.readPool().QueryContext(ctx, s.numbered(query), args...)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var list []DeviceSession
	for rows.Next() {
		var (
			d                DeviceSession
			rotated, revoked sql.NullTime
		)
		err := rows.Scan(&d.ID, &d.UserID, &d.DeviceID, &d.DeviceName, &d.UserNamed, &d.UserAgent, &d.CreatedIP, &d.LastIP,
			&d.CreatedAt, &d.LastUsedAt, &d.ExpiresAt, &d.AuthenticatedAt, &d.TokenHash, &d.TokenExpiresAt,
			&d.PrevTokenHash, &rotated, &revoked, &d.RevokedReason, &d.AMR)
		if err != nil {
			return nil, translate(err)
		}
		d.RotatedAt, d.RevokedAt = timeOrNil(rotated), timeOrNil(revoked)
		list = append(list, d)
	}
	return list, translate(rows.Err())
}

// queryEvents runs a query of eventColumns on the read pool.
func (s *Store) queryEvents(ctx context.Context, query string, args ...any) ([]SecurityEvent, error) {
	rows, err := s.readPool().QueryContext(ctx, s.numbered(query), args...)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var list []SecurityEvent
	for rows.Next() {
		var e SecurityEvent
		if err := rows.Scan(&e.ID, &e.UserID, &e.SessionID, &e.DeviceName, &e.Kind, &e.IP, &e.Detail, &e.CreatedAt); err != nil {
			return nil, translate(err)
		}
		list = append(list, e)
	}
	return list, translate(rows.Err())
}

func timeOrNil(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	return &t.Time
}
