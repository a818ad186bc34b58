package auth

import (
	"context"
	"errors"
	"fmt"

	"gatehouse/models"
)

// CreateUser validates and stores a new account, with its "account created" event.
func (s *Service) CreateUser(ctx context.Context, rawEmail, displayName, password string) (*models.User, error) {
	email, displayName, err := newUserFields(rawEmail, displayName, password)
	if err != nil {
		return nil, err
	}
	hash, err := s.passwords.Hash(ctx, password)
	if err != nil {
		return nil, err
	}
	id, err := s.newID()
	if err != nil {
		return nil, err
	}
	now := s.clock()
	user := &models.User{ID: id, Email: email, DisplayName: displayName, PasswordHash: hash, TokenVersion: 1, CreatedAt: now, UpdatedAt: now}
	err = s.store.InTx(ctx, func(tx *models.Store) error {
		if err := tx.CreateUser(ctx, user); err != nil {
			return err
		}
		return tx.RecordEvent(ctx, &models.SecurityEvent{UserID: user.ID, Kind: models.EventAccountCreated, CreatedAt: now})
	})
	if errors.Is(err, models.ErrConflict) {
		return nil, ErrEmailTaken
	} else if err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	return user, nil
}

// CheckSignUp checks a sign-up form as a whole (the email, the display name, the password and
// the password typed again) and answers every problem at once, in the form's order, as
// ValidationErrors; nil when the form is fine. Whether the address is taken, SignUp tells.
func CheckSignUp(email, displayName, password, confirm string) error {
	_, _, err := newUserFields(email, displayName, password)
	errs := FieldErrors(err)
	errs.add(validateConfirmation("password_confirm", password, confirm))
	return errs.err()
}

// newUserFields checks what a new account is made of (its email, display name and password),
// reporting every problem at once, and answers the email and name as they are stored.
func newUserFields(rawEmail, displayName, password string) (email, name string, err error) {
	var errs ValidationErrors
	email, err = NormalizeEmail(rawEmail)
	errs.add(err)
	name, err = validateDisplayName(displayName)
	errs.add(err)
	errs.add(validateNewPassword("password", password))
	return email, name, errs.err()
}

// DisableUser disables an account (token rule 7): it can no longer sign in or refresh, its
// token_version is bumped and every device session is revoked.
func (s *Service) DisableUser(ctx context.Context, rawEmail string) error {
	email, err := NormalizeEmail(rawEmail)
	if err != nil {
		return err
	}
	now := s.clock()
	var (
		userID string
		ids    []string
	)
	err = s.store.InTx(ctx, func(tx *models.Store) error {
		u, err := tx.UserByEmail(ctx, email)
		if err != nil {
			return fmt.Errorf("find user: %w", err)
		}
		userID = u.ID
		if _, ids, err = tx.DisableUser(ctx, u.ID, now); err != nil {
			return fmt.Errorf("disable user: %w", err)
		}
		return tx.RecordEvent(ctx, &models.SecurityEvent{UserID: u.ID, Kind: models.EventUserDisabled, CreatedAt: now})
	})
	if errors.Is(err, models.ErrNotFound) {
		return ErrNotFound
	}
	if err == nil {
		s.revoked(userID, ids...)
	}
	return err
}

// SignOutUser signs an account out everywhere without disabling it (an operator's command):
// token_version is bumped and every device session revoked.
func (s *Service) SignOutUser(ctx context.Context, rawEmail string) error {
	email, err := NormalizeEmail(rawEmail)
	if err != nil {
		return err
	}
	u, err := s.store.UserByEmail(ctx, email)
	if errors.Is(err, models.ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	return s.revokeEverything(ctx, u.ID, "", models.EventSignedOutEverywhere, "")
}
