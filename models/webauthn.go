package models

import (
	"context"
	"time"
)

// Passkeys lists a user's passkeys (confirmed factors of kind passkey), oldest first.
func (s *Store) Passkeys(ctx context.Context, userID string) ([]Factor, error) {
	var list []Factor
	err := s.read(ctx).Where("user_id = ? AND kind = ? AND confirmed_at IS NOT NULL", userID, FactorPasskey).
		Order("created_at, id").Find(&list).Error
	return list, translate(err)
}

// SetChallengeWebAuthn stores the session data of a WebAuthn ceremony on an open challenge of a
// purpose (the second step of a sign-in asks for a passkey after it was opened); a newer
// ceremony replaces an older one, so only the newest answer can verify. ErrNotFound when the
// challenge is not open any more.
func (s *Store) SetChallengeWebAuthn(ctx context.Context, hash []byte, purpose, data string, maxAttempts int, now time.Time) error {
	res := s.with(ctx).Model(&AuthChallenge{}).
		Where("id_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ? AND attempts < ?", hash, purpose, now, maxAttempts).
		Update("webauthn", data)
	if res.Error == nil && res.RowsAffected != 1 {
		return ErrNotFound
	}
	return translate(res.Error)
}
