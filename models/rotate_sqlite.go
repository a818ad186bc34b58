package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// sqliteRotateStatement is rotateStatement (session.go) for SQLite, clause for clause: the same
// guard, the same successor expiry (MIN here, LEAST there; both sides are UTC times in the
// driver's one text format, so they compare as text), the same device-name rule. SQLite's
// RETURNING may only name the updated table, so the user's columns come from subqueries; the
// history row is written by the trigger device_sessions_record_token (migration 0008), in this
// statement. One statement is atomic on its own, so it runs with no BEGIN and COMMIT around it:
// on this driver, which parses every statement at every execution, a transaction's two extra
// statements cost as much as the rotation.
//
// Parameters: ?1 presented hash, ?2 successor hash, ?3 now, ?4 now + idle lifetime, ?5 IP, ?6
// device name (empty keeps it), ?7 device id (empty skips the check).
const sqliteRotateStatement = `
UPDATE device_sessions
   SET prev_token_hash = token_hash, token_hash = ?2, rotated_at = ?3,
       token_expires_at = MIN(?4, expires_at), last_used_at = ?3, last_ip = ?5,
       device_name = CASE WHEN ?6 <> '' AND NOT user_named THEN ?6 ELSE device_name END
 WHERE token_hash = ?1 AND revoked_at IS NULL AND token_expires_at > ?3
   AND expires_at > ?3 AND (?7 = '' OR device_id = ?7)
   AND EXISTS (SELECT 1 FROM users u WHERE u.id = device_sessions.user_id AND u.disabled_at IS NULL)
RETURNING id, user_id,
          (SELECT u.token_version FROM users u WHERE u.id = device_sessions.user_id),
          (SELECT u.email_verified_at IS NOT NULL FROM users u WHERE u.id = device_sessions.user_id),
          token_expires_at, amr`

// RotateGuarded is the happy path of a refresh, with the guard of rotateStatement: on
// PostgreSQL that one statement; on SQLite sqliteRotateStatement, also one statement, on the
// writer, below GORM. Either way it returns ErrNotFound when the guard fails, leaving the caller
// to find out why in a transaction.
func (s *Store) RotateGuarded(ctx context.Context, p RotateParams) (*Rotation, error) {
	if s.dialect == Postgres {
		return s.RotateInOneStatement(ctx, p)
	}
	return rotateOnSQLite(ctx, s.db.Statement.ConnPool, p)
}

// RotateGuardedTogether is RotateGuarded for several refreshes in one SQLite transaction on the
// writer: each its own guarded statement, in order, and one commit for all (the commit's WAL
// write, and the writer's hand-over from caller to caller, are then paid once). It returns one
// entry per input: the rotation, or nil when the guard refused it, as ErrNotFound from
// RotateGuarded. An error means nothing was rotated.
func (s *Store) RotateGuardedTogether(ctx context.Context, ps []RotateParams) ([]*Rotation, error) {
	if s.dialect != SQLite {
		return nil, fmt.Errorf("rotate together: SQLite only, not %s", s.dialect)
	}
	out := make([]*Rotation, len(ps))
	err := s.InTx(ctx, func(tx *Store) error {
		for i, p := range ps {
			r, err := rotateOnSQLite(ctx, tx.db.Statement.ConnPool, p) // the transaction's connection
			switch {
			case errors.Is(err, ErrNotFound):
				out[i] = nil
			case err != nil:
				return err
			default:
				out[i] = r
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// rotateOnSQLite runs sqliteRotateStatement on pool: the writer, or a transaction on it (a
// Store's db.Statement.ConnPool; db.ConnPool is the pool even inside a transaction).
func rotateOnSQLite(ctx context.Context, pool gorm.ConnPool, p RotateParams) (*Rotation, error) {
	var (
		r       Rotation
		expires any // a time.Time, or SQLite's text when the driver does not know the column's type
	)
	row := pool.QueryRowContext(ctx, sqliteRotateStatement, p.Hash, p.SuccessorHash, p.Now, p.IdleExpiry, p.IP, p.DeviceName, p.DeviceID)
	err := row.Scan(&r.SessionID, &r.UserID, &r.TokenVersion, &r.EmailVerified, &expires, &r.AMR)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, translate(err)
	}
	if r.TokenExpiresAt, err = sqliteTime(expires); err != nil {
		return nil, err
	}
	return &r, nil
}

// sqliteTimeFormat is the text form the driver writes times in.
const sqliteTimeFormat = "2006-01-02 15:04:05.999999999-07:00"

// sqliteTime reads a time SQLite returned.
func sqliteTime(v any) (time.Time, error) {
	switch t := v.(type) {
	case time.Time:
		return t.UTC(), nil
	case string:
		parsed, err := time.Parse(sqliteTimeFormat, t)
		if err != nil {
			return time.Time{}, fmt.Errorf("read a time from SQLite: %w", err)
		}
		return parsed.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("read a time from SQLite: unexpected %T", v)
}
