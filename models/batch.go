package models

import (
	"context"
	"fmt"
	"time"
)

// rotateBatchStatement is rotateStatement for many refreshes at once: one statement, one commit.
// The input comes as one array per column (the same statement text for every batch size, so one
// prepared statement per connection, and parameters every pgx mode can send). Each clause of the
// UPDATE is rotateStatement's, for the rule named there; the rows the guard refuses are simply
// not returned, and their callers decide in a transaction as after rotateStatement.
//
// Locks: locked takes the row lock of every session whose live token is presented, in id order,
// and SKIP LOCKED: the batch never waits for a row another transaction holds (a sign-out, a
// revoke-all, a refresh decided in a transaction, another batch). So it can be in no deadlock,
// whatever order those take their rows in, and one busy session does not hold back the others.
// The user's row is locked too (FOR SHARE, also SKIP LOCKED), and its token_version, verified
// address and disabled state are read from the locked, latest version: the statement's snapshot
// may predate a password change that committed before the session row was locked, and a
// rotation must not sign an access token with the version it replaced (the property test found
// that). A user row being changed (FOR NO KEY UPDATE by LockUser, or an UPDATE) is skipped like
// a busy session. A skipped session is not updated (the UPDATE joins locked), so its refresh is
// refused here and decided in a transaction, which waits for the lock as rotateStatement would
// have. MATERIALIZED
// makes the locks be taken once, before the UPDATE, which then finds its rows already locked.
//
// Two refreshes of one token in a batch match one row twice; PostgreSQL updates it once, with
// one of the two input rows, and RETURNING names that one (ord): the other is refused, and its
// transaction finds the token just rotated (a grace retry). Each rotated row records its
// successor in refresh_tokens in the same statement.
//
// Parameters, one element per refresh: $1 presented hashes, $2 successor hashes, $3 nows, $4
// idle expiries (now + idle lifetime), $5 IPs, $6 device names (empty keeps it), $7 device ids
// (empty skips the check).
const rotateBatchStatement = `
WITH input AS (
	SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::timestamptz[], $4::timestamptz[], $5::text[], $6::text[], $7::text[])
	  WITH ORDINALITY AS i(hash, successor, at, idle_expiry, ip, device_name, device_id, ord)
), locked AS MATERIALIZED (
	SELECT s.id, u.token_version, u.email_verified_at IS NOT NULL AS email_verified, u.disabled_at
	  FROM device_sessions s JOIN users u ON u.id = s.user_id
	 WHERE s.token_hash = ANY($1::bytea[])
	 ORDER BY s.id
	   FOR NO KEY UPDATE OF s SKIP LOCKED
	   FOR SHARE OF u SKIP LOCKED
), rotated AS (
	UPDATE device_sessions s
	   SET prev_token_hash = s.token_hash, token_hash = i.successor, rotated_at = i.at,
	       token_expires_at = LEAST(i.idle_expiry, s.expires_at), last_used_at = i.at, last_ip = i.ip,
	       device_name = CASE WHEN i.device_name <> '' AND NOT s.user_named THEN i.device_name ELSE s.device_name END
	  FROM locked l, input i
	 WHERE s.id = l.id
	   AND s.token_hash = i.hash AND s.revoked_at IS NULL AND s.token_expires_at > i.at
	   AND s.expires_at > i.at AND (i.device_id = '' OR s.device_id = i.device_id)
	   AND l.disabled_at IS NULL
	RETURNING i.ord, i.successor, i.at, s.id, s.user_id, l.token_version, l.email_verified, s.token_expires_at, s.amr
), issued AS (
	INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at)
	SELECT successor, id, at, token_expires_at FROM rotated
)
SELECT ord, id, user_id, token_version, email_verified, token_expires_at, amr FROM rotated`

// RotateBatch rotates many refreshes in one statement and one commit (PostgreSQL only). It
// returns one entry per input, in order: the rotation, or nil when the guard refused it (the
// caller decides why in a transaction, as after ErrNotFound from RotateInOneStatement). An error
// means nothing was rotated: the statement is one transaction.
func (s *Store) RotateBatch(ctx context.Context, ps []RotateParams) ([]*Rotation, error) {
	if s.dialect != Postgres {
		return nil, fmt.Errorf("rotate in a batch: PostgreSQL only, not %s", s.dialect)
	}
	n := len(ps)
	hashes, successors := make([][]byte, n), make([][]byte, n)
	ats, idles := make([]time.Time, n), make([]time.Time, n)
	ips, names, devices := make([]string, n), make([]string, n), make([]string, n)
	for i, p := range ps {
		hashes[i], successors[i], ats[i], idles[i] = p.Hash, p.SuccessorHash, p.Now, p.IdleExpiry
		ips[i], names[i], devices[i] = p.IP, p.DeviceName, p.DeviceID
	}
	rows, err := s.db.ConnPool.QueryContext(ctx, rotateBatchStatement, hashes, successors, ats, idles, ips, names, devices)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := make([]*Rotation, n)
	for rows.Next() {
		var (
			ord int64
			r   Rotation
		)
		if err := rows.Scan(&ord, &r.SessionID, &r.UserID, &r.TokenVersion, &r.EmailVerified, &r.TokenExpiresAt, &r.AMR); err != nil {
			return nil, translate(err)
		}
		if ord < 1 || ord > int64(n) || out[ord-1] != nil {
			return nil, fmt.Errorf("rotate in a batch: row %d returned for %d inputs", ord, n)
		}
		r.TokenExpiresAt = r.TokenExpiresAt.UTC()
		out[ord-1] = &r
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err)
	}
	return out, nil
}
