package models

import (
	"context"
	"time"
)

// Kinds of second factor.
const (
	FactorTOTP    = "totp"
	FactorPasskey = "passkey"
)

// Factor is a second factor or passkey of a user. A TOTP factor counts once ConfirmedAt is set;
// Secret is its sealed secret and LastStep the newest time step accepted. A passkey keeps its
// WebAuthn credential id (unique across users) and the credential as JSON.
type Factor struct {
	ID           string `gorm:"primaryKey"`
	UserID       string
	Kind         string
	Name         string
	Secret       []byte
	LastStep     int64
	CredentialID []byte
	Credential   string
	CreatedAt    time.Time
	ConfirmedAt  *time.Time
	LastUsedAt   *time.Time
}

// CreateFactor stores a new factor; ErrConflict when its credential id is registered already.
func (s *Store) CreateFactor(ctx context.Context, f *Factor) error {
	return translate(s.with(ctx).Create(f).Error)
}

// Factors lists a user's confirmed factors, oldest first.
func (s *Store) Factors(ctx context.Context, userID string) ([]Factor, error) {
	var list []Factor
	err := s.read(ctx).Where("user_id = ? AND confirmed_at IS NOT NULL", userID).Order("created_at, id").Find(&list).Error
	return list, translate(err)
}

// FactorOf finds one factor of a user, confirmed or not; ErrNotFound when it is another user's.
func (s *Store) FactorOf(ctx context.Context, userID, id string) (*Factor, error) {
	var f Factor
	err := s.with(ctx).Where("id = ? AND user_id = ?", id, userID).Take(&f).Error
	return &f, translate(err)
}

// FactorByCredentialID finds the passkey with a WebAuthn credential id, whoever's it is.
func (s *Store) FactorByCredentialID(ctx context.Context, credentialID []byte) (*Factor, error) {
	var f Factor
	err := s.with(ctx).Where("credential_id = ? AND kind = ? AND confirmed_at IS NOT NULL", credentialID, FactorPasskey).Take(&f).Error
	return &f, translate(err)
}

// ConfirmFactor marks an unconfirmed factor confirmed, with the time step of the code that
// confirmed it; ErrNotFound when it is unknown, another user's, or confirmed already.
func (s *Store) ConfirmFactor(ctx context.Context, userID, id, name string, step int64, now time.Time) error {
	res := s.with(ctx).Model(&Factor{}).Where("id = ? AND user_id = ? AND confirmed_at IS NULL", id, userID).
		Updates(map[string]any{"confirmed_at": now, "last_step": step, "name": name, "last_used_at": now})
	if res.Error == nil && res.RowsAffected != 1 {
		return ErrNotFound
	}
	return translate(res.Error)
}

// UseTOTPStep records that a code of time step step was accepted, in one guarded statement:
// it returns false when that step or a later one was accepted already (the code is a replay).
func (s *Store) UseTOTPStep(ctx context.Context, id string, step int64, now time.Time) (bool, error) {
	res := s.with(ctx).Model(&Factor{}).Where("id = ? AND last_step < ?", id, step).
		Updates(map[string]any{"last_step": step, "last_used_at": now})
	return res.RowsAffected == 1, translate(res.Error)
}

// UsePasskey records a passkey's use: its credential as updated by the ceremony (the new
// signature counter and flags).
func (s *Store) UsePasskey(ctx context.Context, id, credential string, now time.Time) error {
	return translate(s.with(ctx).Model(&Factor{}).Where("id = ?", id).
		Updates(map[string]any{"credential": credential, "last_used_at": now}).Error)
}

// RenameFactor renames one of a user's confirmed factors; ErrNotFound when it is not theirs.
func (s *Store) RenameFactor(ctx context.Context, userID, id, name string) error {
	res := s.with(ctx).Model(&Factor{}).Where("id = ? AND user_id = ? AND confirmed_at IS NOT NULL", id, userID).Update("name", name)
	if res.Error == nil && res.RowsAffected != 1 {
		return ErrNotFound
	}
	return translate(res.Error)
}

// DeleteFactor removes one of a user's factors; ErrNotFound when it is not theirs.
func (s *Store) DeleteFactor(ctx context.Context, userID, id string) error {
	res := s.with(ctx).Where("id = ? AND user_id = ?", id, userID).Delete(&Factor{})
	if res.Error == nil && res.RowsAffected != 1 {
		return ErrNotFound
	}
	return translate(res.Error)
}

// DeleteFactors removes every factor and recovery code of a user and says how many factors went.
func (s *Store) DeleteFactors(ctx context.Context, userID string) (int64, error) {
	res := s.with(ctx).Where("user_id = ?", userID).Delete(&Factor{})
	if res.Error != nil {
		return 0, translate(res.Error)
	}
	return res.RowsAffected, s.DeleteRecoveryCodes(ctx, userID)
}

// RecoveryCode is one single-use recovery code: only its SHA-256 is kept.
type RecoveryCode struct {
	CodeHash  []byte `gorm:"primaryKey"`
	UserID    string
	CreatedAt time.Time
	UsedAt    *time.Time
}

// ReplaceRecoveryCodes voids a user's recovery codes and stores a new set.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes [][]byte, now time.Time) error {
	if err := s.DeleteRecoveryCodes(ctx, userID); err != nil {
		return err
	}
	codes := make([]RecoveryCode, len(hashes))
	for i, h := range hashes {
		codes[i] = RecoveryCode{CodeHash: h, UserID: userID, CreatedAt: now}
	}
	return translate(s.with(ctx).Create(&codes).Error)
}

// DeleteRecoveryCodes removes a user's recovery codes.
func (s *Store) DeleteRecoveryCodes(ctx context.Context, userID string) error {
	return translate(s.with(ctx).Where("user_id = ?", userID).Delete(&RecoveryCode{}).Error)
}

// UseRecoveryCode marks one of a user's unused codes used, in one guarded statement; false when
// no unused code of that user has the hash.
func (s *Store) UseRecoveryCode(ctx context.Context, userID string, hash []byte, now time.Time) (bool, error) {
	res := s.with(ctx).Model(&RecoveryCode{}).Where("code_hash = ? AND user_id = ? AND used_at IS NULL", hash, userID).Update("used_at", now)
	return res.RowsAffected == 1, translate(res.Error)
}

// RecoveryCodesLeft counts a user's unused recovery codes.
func (s *Store) RecoveryCodesLeft(ctx context.Context, userID string) (int64, error) {
	var n int64
	err := s.read(ctx).Model(&RecoveryCode{}).Where("user_id = ? AND used_at IS NULL", userID).Count(&n).Error
	return n, translate(err)
}
