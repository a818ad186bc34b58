package models

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// DeviceSession is one signed-in device and its refresh-token family. TokenHash is the family's
// one live token; PrevTokenHash the token it replaced at RotatedAt (for the retry grace window).
type DeviceSession struct {
	ID              string `gorm:"primaryKey"`
	UserID          string
	DeviceID        string
	DeviceName      string
	UserNamed       bool // the user renamed it: apps' X-Device-Name no longer overrides it
	UserAgent       string
	CreatedIP       string
	LastIP          string
	CreatedAt       time.Time
	LastUsedAt      time.Time
	ExpiresAt       time.Time // absolute lifetime; rotation does not extend it
	AuthenticatedAt time.Time // when the password was last entered on this device
	TokenHash       []byte
	TokenExpiresAt  time.Time // idle lifetime of the live token
	PrevTokenHash   []byte
	RotatedAt       *time.Time
	RevokedAt       *time.Time
	RevokedReason   string
	AMR             string `gorm:"column:amr;default:pwd"` // how it signed in: RFC 8176 values, space-separated
}

// RefreshToken is the history of a family: every token hash ever issued, so that a replayed old
// token is recognised as belonging to its family.
type RefreshToken struct {
	TokenHash []byte `gorm:"primaryKey"`
	SessionID string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// Live tells whether the session can still be used at now.
func (d *DeviceSession) Live(now time.Time) bool {
	return d.RevokedAt == nil && now.Before(d.ExpiresAt)
}

// CreateSession stores a new device session and records its first token in the history.
func (s *Store) CreateSession(ctx context.Context, d *DeviceSession) error {
	if err := s.with(ctx).Create(d).Error; err != nil {
		return translate(err)
	}
	return s.recordToken(ctx, d.TokenHash, d.ID, d.CreatedAt, d.TokenExpiresAt)
}

func (s *Store) recordToken(ctx context.Context, hash []byte, sessionID string, issued, expires time.Time) error {
	return translate(s.with(ctx).Create(&RefreshToken{TokenHash: hash, SessionID: sessionID, IssuedAt: issued, ExpiresAt: expires}).Error)
}

// Rotation is what the one-statement rotation returns.
type Rotation struct {
	SessionID      string
	UserID         string
	TokenVersion   int64
	EmailVerified  bool
	TokenExpiresAt time.Time
	AMR            string // the session's amr, space-separated
}

// RotateParams describe one rotation: the presented token's hash, its successor's, and the client.
type RotateParams struct {
	Hash, SuccessorHash []byte
	Now, IdleExpiry     time.Time
	DeviceID            string // when set, must match the session's device
	DeviceName          string // when set, renames a session the user has not named
	IP                  string
}

// rotateStatement finds, checks and rotates in one statement: the guard and the row lock on the
// session are one UPDATE, so concurrent refreshes of one token queue on the row and only the first
// passes the guard. The rules are decided in services/auth (rules.go); each clause here enforces
// the one named beside it, with the values the service passes:
//
//	s.token_hash = $1                     rule 1, rotatable: the presented token is the live one
//	s.revoked_at IS NULL                  rule 7, familyClosed: the family was not signed out
//	u.disabled_at IS NULL                 rule 7, familyClosed: its user is not disabled
//	s.token_expires_at > $3               rule 5, expired: the idle lifetime, at the service's now
//	s.expires_at > $3                     rule 5, expired: the absolute lifetime
//	$7 = '' OR s.device_id = $7           sameDevice: the family's own device, or none named
//	LEAST($4, s.expires_at)               rule 5, refreshExpiry: the successor's idle expiry,
//	                                      capped by the session's absolute one
//
// The user's values (token_version, the verified address, disabled) come from the statement's
// snapshot; the user's row is not locked, so refreshes of one user never queue on it. That is
// sound because every transaction that bumps token_version or disables the user also revokes
// every live session of the user: bumpVersion does both in one call. A rotation whose snapshot
// predates such a transaction either finishes before it touches the session, and so is ordered
// before it, or waits for that transaction's lock on the session row and then re-checks the row's
// latest version (PostgreSQL re-reads only the locked table's row, not users'), which is revoked: it
// rotates nothing. A transaction that wrote the session row without revoking it would let the
// rotation sign with the token_version it replaced (TestRotateInOneStatementBehindASignOutEverywhere).
// The verified address is sound for another reason: nothing ever clears it (an email change
// makes the new address verified), so a stale snapshot can only under-state it.
// The batch statement locks the users' rows as well (see rotateBatchStatement).
//
// Parameters: $1 presented hash, $2 successor hash, $3 now, $4 now + idle lifetime, $5 IP, $6
// device name (empty keeps it), $7 device id (empty skips the check). Any refusal returns no row,
// and the service decides why in a transaction (grace retry, replay, expiry, revocation).
const rotateStatement = `
WITH rotated AS (
	UPDATE device_sessions s
	   SET prev_token_hash = s.token_hash, token_hash = $2, rotated_at = $3,
	       token_expires_at = LEAST($4, s.expires_at), last_used_at = $3, last_ip = $5,
	       device_name = CASE WHEN $6 <> '' AND NOT s.user_named THEN $6 ELSE s.device_name END
	  FROM users u
	 WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.token_expires_at > $3
	   AND s.expires_at > $3 AND ($7 = '' OR s.device_id = $7)
	   AND u.id = s.user_id AND u.disabled_at IS NULL
	RETURNING s.id, s.user_id, u.token_version, u.email_verified_at IS NOT NULL AS email_verified, s.token_expires_at, s.amr
), issued AS (
	INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at)
	SELECT $2, id, $3, token_expires_at FROM rotated
)
SELECT id, user_id, token_version, email_verified, token_expires_at, amr FROM rotated`

// RotateInOneStatement is the PostgreSQL happy path of a refresh: one round trip. It returns
// ErrNotFound when the guard fails, leaving the caller to find out why inside a transaction.
// It goes straight to the driver (pgx caches the prepared statement): on this hot path GORM's
// statement building cost about a third of the server's CPU.
func (s *Store) RotateInOneStatement(ctx context.Context, p RotateParams) (*Rotation, error) {
	var r Rotation
	row := s.db.ConnPool.QueryRowContext(ctx, rotateStatement, p.Hash, p.SuccessorHash, p.Now, p.IdleExpiry, p.IP, p.DeviceName, p.DeviceID)
	err := row.Scan(&r.SessionID, &r.UserID, &r.TokenVersion, &r.EmailVerified, &r.TokenExpiresAt, &r.AMR)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, translate(err)
	}
	r.TokenExpiresAt = r.TokenExpiresAt.UTC()
	return &r, nil
}

// FamilyOf finds the session a token was ever issued in and, on PostgreSQL, locks its row for
// the rest of the transaction, so that everything done to one family happens one at a time.
func (s *Store) FamilyOf(ctx context.Context, hash []byte) (*DeviceSession, error) {
	lock := ""
	if s.dialect == Postgres {
		lock = " FOR UPDATE OF s"
	}
	var d DeviceSession
	err := s.with(ctx).Raw(`SELECT s.* FROM device_sessions s JOIN refresh_tokens t ON t.session_id = s.id WHERE t.token_hash = ?`+lock, hash).Scan(&d).Error
	if err == nil && d.ID == "" {
		err = ErrNotFound
	}
	return &d, translate(err)
}

// Rotate replaces a session's live token inside a transaction that holds the family (FamilyOf);
// the successor expires at expires, which the caller decides.
func (s *Store) Rotate(ctx context.Context, d *DeviceSession, p RotateParams, expires time.Time) error {
	name := d.DeviceName
	if p.DeviceName != "" && !d.UserNamed {
		name = p.DeviceName
	}
	res := s.with(ctx).Model(&DeviceSession{}).Where("id = ? AND token_hash = ?", d.ID, p.Hash).Updates(map[string]any{
		"prev_token_hash": p.Hash, "token_hash": p.SuccessorHash, "rotated_at": p.Now, "token_expires_at": expires,
		"last_used_at": p.Now, "last_ip": p.IP, "device_name": name,
	})
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected != 1 {
		return ErrConflict
	}
	d.PrevTokenHash, d.TokenHash, d.RotatedAt, d.TokenExpiresAt, d.LastUsedAt, d.LastIP, d.DeviceName =
		p.Hash, p.SuccessorHash, &p.Now, expires, p.Now, p.IP, name
	if s.dialect == SQLite {
		return nil // the trigger device_sessions_record_token recorded the successor (migration 0008)
	}
	return s.recordToken(ctx, p.SuccessorHash, d.ID, p.Now, expires)
}

// TouchSession records use of a session by a grace-window retry.
func (s *Store) TouchSession(ctx context.Context, id, ip string, now time.Time) error {
	return translate(s.with(ctx).Model(&DeviceSession{}).Where("id = ?", id).
		Updates(map[string]any{"last_used_at": now, "last_ip": ip}).Error)
}

// RevokeSession signs one session out. It returns false when it was already revoked.
func (s *Store) RevokeSession(ctx context.Context, id, reason string, now time.Time) (bool, error) {
	res := s.with(ctx).Model(&DeviceSession{}).Where("id = ? AND revoked_at IS NULL", id).
		Updates(map[string]any{"revoked_at": now, "revoked_reason": reason})
	return res.RowsAffected == 1, translate(res.Error)
}

// RevokeUserSessions signs out every live session of a user except keepID (may be empty) and
// returns the ids it revoked.
func (s *Store) RevokeUserSessions(ctx context.Context, userID, keepID, reason string, now time.Time) ([]string, error) {
	var ids []string
	err := s.with(ctx).Raw(`UPDATE device_sessions SET revoked_at = ?, revoked_reason = ?
		WHERE user_id = ? AND id <> ? AND revoked_at IS NULL RETURNING id`, now, reason, userID, keepID).Scan(&ids).Error
	return ids, translate(err)
}

// LiveSessionOnDevice finds the user's unrevoked session on a device, if any, expired or not: the
// unique index device_sessions_live_device counts every unrevoked session, so a sign-in on the
// device must revoke even an expired one before it creates its own.
func (s *Store) LiveSessionOnDevice(ctx context.Context, userID, deviceID string) (*DeviceSession, error) {
	var d DeviceSession
	err := s.with(ctx).Where("user_id = ? AND device_id = ? AND revoked_at IS NULL", userID, deviceID).Take(&d).Error
	return &d, translate(err)
}

// NamedOnDevice is the name the user gave the newest session of theirs on a device, signed out or
// not, or "" when they gave none there: a device keeps its name across sign-ins.
func (s *Store) NamedOnDevice(ctx context.Context, userID, deviceID string) (string, error) {
	var names []string
	err := s.with(ctx).Model(&DeviceSession{}).Where("user_id = ? AND device_id = ?", userID, deviceID).
		Order("created_at DESC").Limit(1).Pluck("CASE WHEN user_named THEN device_name ELSE '' END", &names).Error
	if err != nil || len(names) == 0 {
		return "", translate(err)
	}
	return names[0], nil
}

// LiveSessions lists a user's live sessions, most recently used first.
func (s *Store) LiveSessions(ctx context.Context, userID string, now time.Time) ([]DeviceSession, error) {
	return s.querySessions(ctx, `SELECT `+sessionColumns+` FROM device_sessions
		WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? ORDER BY last_used_at DESC, id`, userID, now)
}

// LeastRecentlyUsedSessions lists up to n of a user's live sessions, least recently used first.
func (s *Store) LeastRecentlyUsedSessions(ctx context.Context, userID string, now time.Time, n int) ([]DeviceSession, error) {
	var list []DeviceSession
	err := s.with(ctx).Where("user_id = ? AND revoked_at IS NULL AND expires_at > ?", userID, now).
		Order("last_used_at, id").Limit(n).Find(&list).Error
	return list, translate(err)
}

// CountUserLiveSessions counts a user's live sessions.
func (s *Store) CountUserLiveSessions(ctx context.Context, userID string, now time.Time) (int64, error) {
	var n int64
	err := s.with(ctx).Model(&DeviceSession{}).Where("user_id = ? AND revoked_at IS NULL AND expires_at > ?", userID, now).Count(&n).Error
	return n, translate(err)
}

// LiveSessionOfUser finds a live (not revoked, not expired) session by id that belongs to userID;
// ErrNotFound otherwise, so that another user's session is indistinguishable from an unknown one.
func (s *Store) LiveSessionOfUser(ctx context.Context, userID, id string, now time.Time) (*DeviceSession, error) {
	var d DeviceSession
	err := s.read(ctx).Where("id = ? AND user_id = ? AND revoked_at IS NULL AND expires_at > ?", id, userID, now).Take(&d).Error
	return &d, translate(err)
}

// SessionByID finds a session by id.
func (s *Store) SessionByID(ctx context.Context, id string) (*DeviceSession, error) {
	var d DeviceSession
	err := s.read(ctx).Where("id = ?", id).Take(&d).Error
	return &d, translate(err)
}

// RenameSession sets the user-given name of a live session.
func (s *Store) RenameSession(ctx context.Context, userID, id, name string, now time.Time) error {
	res := s.with(ctx).Model(&DeviceSession{}).Where("id = ? AND user_id = ? AND revoked_at IS NULL AND expires_at > ?", id, userID, now).
		Updates(map[string]any{"device_name": name, "user_named": true})
	if res.Error == nil && res.RowsAffected == 0 {
		return ErrNotFound
	}
	return translate(res.Error)
}

// AccessState is what verifying an access token needs to know about its session and user.
type AccessState struct {
	UserID           string
	Email            string
	DisplayName      string
	EmailVerified    bool
	TokenVersion     int64
	UserDisabled     bool
	SessionRevoked   bool
	SessionExpiresAt time.Time
	AuthenticatedAt  time.Time
}

// AccessStateOf reads, in one query, the revocation state an access token is checked against.
func (s *Store) AccessStateOf(ctx context.Context, sessionID string) (*AccessState, error) {
	var row struct {
		UserID          string
		Email           string
		DisplayName     string
		TokenVersion    int64
		DisabledAt      *time.Time
		EmailVerifiedAt *time.Time
		RevokedAt       *time.Time
		ExpiresAt       time.Time
		AuthenticatedAt time.Time
	}
	err := s.read(ctx).Raw(`SELECT s.user_id, u.email, u.display_name, u.token_version, u.disabled_at, u.email_verified_at, s.revoked_at, s.expires_at, s.authenticated_at
		FROM device_sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?`, sessionID).Scan(&row).Error
	if err == nil && row.UserID == "" {
		err = ErrNotFound
	}
	return &AccessState{
		UserID: row.UserID, Email: row.Email, DisplayName: row.DisplayName, TokenVersion: row.TokenVersion, UserDisabled: row.DisabledAt != nil,
		EmailVerified:  row.EmailVerifiedAt != nil,
		SessionRevoked: row.RevokedAt != nil, SessionExpiresAt: row.ExpiresAt, AuthenticatedAt: row.AuthenticatedAt,
	}, translate(err)
}

// MarkAuthenticated records that the password was just entered on this session (re-authentication).
func (s *Store) MarkAuthenticated(ctx context.Context, id string, now time.Time) error {
	return translate(s.with(ctx).Model(&DeviceSession{}).Where("id = ?", id).Update("authenticated_at", now).Error)
}

// CountLiveSessions counts device sessions that are neither revoked nor expired (a metric).
func (s *Store) CountLiveSessions(ctx context.Context) (int64, error) {
	var n int64
	err := s.read(ctx).Model(&DeviceSession{}).Where("revoked_at IS NULL AND expires_at > ?", time.Now().UTC()).Count(&n).Error
	return n, translate(err)
}
