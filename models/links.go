package models

import (
	"context"
	"time"
)

// Purposes of a link token.
const (
	LinkPasswordReset = "password_reset"
	LinkVerifyEmail   = "verify_email"
	LinkEmailChange   = "email_change"
	LinkEmailUndo     = "email_undo"
)

// LinkToken is the stored half of a link sent by email: only the SHA-256 of its token.
type LinkToken struct {
	TokenHash    []byte `gorm:"primaryKey"`
	UserID       string
	Purpose      string
	Email        string // the address the link was sent to
	OtherEmail   string // for an undo: the address to restore
	CreatedAt    time.Time
	ExpiresAt    time.Time
	UsedAt       *time.Time
	SupersededAt *time.Time
}

// CreateLinkToken stores t and supersedes the user's earlier unused tokens of the same purpose,
// so that only the newest link works. Undo links are the exception: each belongs to a different
// former address, and a second change must not take the first address's way back.
func (s *Store) CreateLinkToken(ctx context.Context, t *LinkToken) error {
	if t.Purpose != LinkEmailUndo {
		err := s.with(ctx).Exec(`UPDATE link_tokens SET superseded_at = ?
			WHERE user_id = ? AND purpose = ? AND used_at IS NULL AND superseded_at IS NULL`, t.CreatedAt, t.UserID, t.Purpose).Error
		if err != nil {
			return translate(err)
		}
	}
	return translate(s.with(ctx).Create(t).Error)
}

// UsableLinkToken finds a token that is unused, not superseded and not expired, without using it
// up (the page a link opens shows a form; only its POST uses the token).
func (s *Store) UsableLinkToken(ctx context.Context, hash []byte, purpose string, now time.Time) (*LinkToken, error) {
	var t LinkToken
	err := s.with(ctx).Where("token_hash = ? AND purpose = ? AND used_at IS NULL AND superseded_at IS NULL AND expires_at > ?", hash, purpose, now).Take(&t).Error
	return &t, translate(err)
}

// UseLinkToken marks a usable token used, in one guarded statement, so that two requests with one
// link cannot both use it; ErrNotFound when it is unknown, used, superseded or expired.
func (s *Store) UseLinkToken(ctx context.Context, hash []byte, purpose string, now time.Time) (*LinkToken, error) {
	res := s.with(ctx).Model(&LinkToken{}).
		Where("token_hash = ? AND purpose = ? AND used_at IS NULL AND superseded_at IS NULL AND expires_at > ?", hash, purpose, now).
		Update("used_at", now)
	if res.Error != nil {
		return nil, translate(res.Error)
	}
	if res.RowsAffected != 1 {
		return nil, ErrNotFound
	}
	var t LinkToken
	err := s.with(ctx).Where("token_hash = ?", hash).Take(&t).Error
	return &t, translate(err)
}

// RememberDevice records that a user signed in on a device; it tells whether the device is new.
func (s *Store) RememberDevice(ctx context.Context, userID, deviceID string, now time.Time) (bool, error) {
	res := s.with(ctx).Exec(`INSERT INTO known_devices (user_id, device_id, first_seen) VALUES (?, ?, ?)
		ON CONFLICT (user_id, device_id) DO NOTHING`, userID, deviceID, now)
	return res.RowsAffected == 1, translate(res.Error)
}

// KnownDevice tells whether a user has signed in on a device before.
func (s *Store) KnownDevice(ctx context.Context, userID, deviceID string) (bool, error) {
	var n int64
	err := s.read(ctx).Table("known_devices").Where("user_id = ? AND device_id = ?", userID, deviceID).Count(&n).Error
	return n > 0, translate(err)
}

// HasKnownDevices tells whether a user has signed in on any device before.
func (s *Store) HasKnownDevices(ctx context.Context, userID string) (bool, error) {
	var n int64
	err := s.read(ctx).Table("known_devices").Where("user_id = ?", userID).Limit(1).Count(&n).Error
	return n > 0, translate(err)
}
