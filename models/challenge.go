package models

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// Purposes of an auth challenge.
const (
	ChallengeSecondFactor    = "second_factor"    // the second step of a password sign-in
	ChallengePasskeyLogin    = "passkey_login"    // a sign-in with a passkey alone
	ChallengePasskeyRegister = "passkey_register" // adding a passkey
	ChallengePasskeyReauth   = "passkey_reauth"   // confirming a sensitive action with a passkey
)

// AuthChallenge is a sign-in step in flight: only the SHA-256 of its id is kept. It is
// single-use (UsedAt), short-lived (ExpiresAt) and refuses after too many wrong codes (Attempts).
type AuthChallenge struct {
	IDHash       []byte `gorm:"primaryKey"`
	Purpose      string
	UserID       *string // nil for a passkey sign-in, whose user the passkey names
	SessionID    string  // the session that asked (register, reauth)
	TokenVersion int64   // the user's token_version when the password was checked
	DeviceName   string  // the name the app gave at the first step
	WebAuthn     string  `gorm:"column:webauthn"` // the WebAuthn ceremony's session data as JSON
	Attempts     int
	CreatedAt    time.Time
	ExpiresAt    time.Time
	UsedAt       *time.Time
}

// CreateChallenge stores a new challenge.
func (s *Store) CreateChallenge(ctx context.Context, c *AuthChallenge) error {
	return translate(s.with(ctx).Create(c).Error)
}

// OpenChallenge finds a challenge of a purpose that is unused, unexpired and under maxAttempts,
// without using it; ErrNotFound otherwise.
func (s *Store) OpenChallenge(ctx context.Context, hash []byte, purpose string, maxAttempts int, now time.Time) (*AuthChallenge, error) {
	var c AuthChallenge
	err := s.with(ctx).Where("id_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ? AND attempts < ?", hash, purpose, now, maxAttempts).Take(&c).Error
	return &c, translate(err)
}

// UseChallenge marks an open challenge used, in one guarded statement, so that two requests
// cannot both complete it; ErrNotFound when it is not open any more.
func (s *Store) UseChallenge(ctx context.Context, hash []byte, maxAttempts int, now time.Time) error {
	res := s.with(ctx).Model(&AuthChallenge{}).Where("id_hash = ? AND used_at IS NULL AND expires_at > ? AND attempts < ?", hash, now, maxAttempts).
		Update("used_at", now)
	if res.Error == nil && res.RowsAffected != 1 {
		return ErrNotFound
	}
	return translate(res.Error)
}

// FailChallenge counts a wrong answer to an open challenge and returns how many it has had.
func (s *Store) FailChallenge(ctx context.Context, hash []byte) (int, error) {
	if err := s.with(ctx).Model(&AuthChallenge{}).Where("id_hash = ? AND used_at IS NULL", hash).
		Update("attempts", gorm.Expr("attempts + 1")).Error; err != nil {
		return 0, translate(err)
	}
	var c AuthChallenge
	err := s.with(ctx).Select("attempts").Where("id_hash = ?", hash).Take(&c).Error
	return c.Attempts, translate(err)
}

// DeleteChallenges drops the challenges of a user (a password change, a second-factor reset).
func (s *Store) DeleteChallenges(ctx context.Context, userID string) error {
	return translate(s.with(ctx).Where("user_id = ?", userID).Delete(&AuthChallenge{}).Error)
}
