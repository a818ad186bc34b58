package models

import (
	"context"
	"time"
)

// User is an account. Email is stored normalised (trimmed, lower case).
type User struct {
	ID           string `gorm:"primaryKey"`
	Email        string
	DisplayName  string
	PasswordHash string
	TokenVersion int64
	DisabledAt   *time.Time
	// EmailVerifiedAt is when the person proved the address is theirs (nil: not yet).
	EmailVerifiedAt *time.Time
	// NotifySignIns: email the owner when the account signs in on a device it has not used.
	NotifySignIns bool `gorm:"default:true"`
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// EmailVerified tells whether the address was verified.
func (u *User) EmailVerified() bool { return u.EmailVerifiedAt != nil }

// MarkEmailVerified records that the user proved email is theirs; it changes nothing when the
// user's address is no longer that email (ErrNotFound).
func (s *Store) MarkEmailVerified(ctx context.Context, userID, email string, now time.Time) error {
	res := s.with(ctx).Model(&User{}).Where("id = ? AND email = ?", userID, email).
		Updates(map[string]any{"email_verified_at": now, "updated_at": now})
	if res.Error == nil && res.RowsAffected == 0 {
		return ErrNotFound
	}
	return translate(res.Error)
}

// SetEmail changes a user's address (verified or not, as told) and bumps token_version when
// bump is set; ErrConflict when another account has it.
func (s *Store) SetEmail(ctx context.Context, userID, email string, verifiedAt *time.Time, now time.Time) error {
	res := s.with(ctx).Model(&User{}).Where("id = ?", userID).
		Updates(map[string]any{"email": email, "email_verified_at": verifiedAt, "updated_at": now})
	if res.Error == nil && res.RowsAffected == 0 {
		return ErrNotFound
	}
	return translate(res.Error)
}

// SetNotifySignIns turns the new-device sign-in notices on or off.
func (s *Store) SetNotifySignIns(ctx context.Context, userID string, on bool, now time.Time) error {
	return translate(s.with(ctx).Model(&User{}).Where("id = ?", userID).
		Updates(map[string]any{"notify_sign_ins": on, "updated_at": now}).Error)
}

// SetDisplayName changes the name the account goes by; ErrNotFound when there is no such user.
// The users trigger tells the revocation caches, which answer /api/me with it.
func (s *Store) SetDisplayName(ctx context.Context, userID, name string, now time.Time) error {
	res := s.with(ctx).Model(&User{}).Where("id = ?", userID).
		Updates(map[string]any{"display_name": name, "updated_at": now})
	if res.Error == nil && res.RowsAffected == 0 {
		return ErrNotFound
	}
	return translate(res.Error)
}

// Disabled tells whether the account was disabled.
func (u *User) Disabled() bool { return u.DisabledAt != nil }

// CreateUser inserts u; ErrConflict when the email is taken.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	return translate(s.with(ctx).Create(u).Error)
}

// UserByEmail finds a user by normalised email.
func (s *Store) UserByEmail(ctx context.Context, email string) (*User, error) {
	var u User
	err := s.read(ctx).Where("email = ?", email).Take(&u).Error
	return &u, translate(err)
}

// UserByID finds a user by id.
func (s *Store) UserByID(ctx context.Context, id string) (*User, error) {
	var u User
	err := s.read(ctx).Where("id = ?", id).Take(&u).Error
	return &u, translate(err)
}

// LockUser reads a user and, on PostgreSQL, locks the row for the rest of the transaction, so
// that transactions of one user that take it (and UPDATEs of the user) run one at a time. It does
// not hold back foreign-key checks of rows referencing the user (see lockClause). Lock order: the
// user before any of their sessions; a transaction that holds a session row and then waits for
// the user, or holds several sessions without the user, can deadlock with one that locked the user.
func (s *Store) LockUser(ctx context.Context, id string) (*User, error) {
	var u User
	err := s.with(ctx).Raw(`SELECT * FROM users WHERE id = ?`+s.lockClause(), id).Scan(&u).Error
	if err == nil && u.ID == "" {
		err = ErrNotFound
	}
	return &u, translate(err)
}

// A version bump ends every access token the user holds and, in the same call, signs out every
// session of the user (reason is recorded on each): the two go together, because the one-statement
// rotation reads token_version without locking the user's row and relies on that revocation to
// refuse a rotation that waited behind the bump (see rotateStatement). Each returns the new
// version and the sessions it signed out. Call them inside a transaction (InTx), which makes
// the two statements one change.

// SetPassword stores a new password hash, bumps token_version and signs out every session.
func (s *Store) SetPassword(ctx context.Context, userID, hash, reason string, now time.Time) (int64, []string, error) {
	return s.bumpVersion(ctx, userID, reason, now, map[string]any{"password_hash": hash})
}

// SignOutEverywhere bumps token_version and signs out every session.
func (s *Store) SignOutEverywhere(ctx context.Context, userID, reason string, now time.Time) (int64, []string, error) {
	return s.bumpVersion(ctx, userID, reason, now, nil)
}

// DisableUser marks the user disabled, bumps token_version and signs out every session.
func (s *Store) DisableUser(ctx context.Context, userID string, now time.Time) (int64, []string, error) {
	return s.bumpVersion(ctx, userID, EventUserDisabled, now, map[string]any{"disabled_at": now})
}

// bumpVersion moves token_version on (with set's other columns) and revokes every live session
// of the user.
func (s *Store) bumpVersion(ctx context.Context, userID, reason string, now time.Time, set map[string]any) (int64, []string, error) {
	var version int64
	assign := ""
	args := []any{now}
	for col, v := range set {
		assign += ", " + col + " = ?"
		args = append(args, v)
	}
	args = append(args, userID)
	err := s.with(ctx).Raw(`UPDATE users SET token_version = token_version + 1, updated_at = ?`+assign+
		` WHERE id = ? RETURNING token_version`, args...).Scan(&version).Error
	if err == nil && version == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return 0, nil, translate(err)
	}
	ended, err := s.RevokeUserSessions(ctx, userID, "", reason, now)
	if err != nil {
		return 0, nil, err
	}
	return version, ended, nil
}
