package auth

import (
	"context"
	"errors"

	"gatehouse/models"
)

// Sessions lists the user's live device sessions, most recently used first.
func (s *Service) Sessions(ctx context.Context, userID string) ([]models.DeviceSession, error) {
	return s.store.LiveSessions(ctx, userID, s.clock())
}

// Events lists the user's recent security events, newest first.
func (s *Service) Events(ctx context.Context, userID string, limit int) ([]models.SecurityEvent, error) {
	return s.store.RecentEvents(ctx, userID, limit)
}

// User returns the account behind a principal.
func (s *Service) User(ctx context.Context, userID string) (*models.User, error) {
	u, err := s.store.UserByID(ctx, userID)
	if errors.Is(err, models.ErrNotFound) {
		return nil, ErrNotFound
	}
	return u, err
}

// SignOutDevice signs out one of the user's sessions; ErrNotFound for an unknown, already
// signed-out or another user's session.
func (s *Service) SignOutDevice(ctx context.Context, userID, sessionID, ip string) error {
	now := s.clock()
	err := s.store.InTx(ctx, func(tx *models.Store) error {
		d, err := tx.LiveSessionOfUser(ctx, userID, sessionID, now)
		if err != nil {
			return err
		}
		revoked, err := tx.RevokeSession(ctx, d.ID, models.EventSignedOut, now)
		if err != nil {
			return err
		}
		if !revoked {
			return models.ErrNotFound
		}
		return tx.RecordEvent(ctx, &models.SecurityEvent{UserID: userID, SessionID: d.ID, DeviceName: d.DeviceName, Kind: models.EventSignedOut, IP: ip, CreatedAt: now})
	})
	if errors.Is(err, models.ErrNotFound) {
		return ErrNotFound
	}
	if err == nil {
		s.revoked(userID, sessionID)
	}
	return err
}

// SignOutOthers signs out every session of the user but the caller's.
func (s *Service) SignOutOthers(ctx context.Context, p *Principal, ip string) error {
	if err := s.requireRecentAuth(p); err != nil {
		return err
	}
	now := s.clock()
	var ids []string
	err := s.store.InTx(ctx, func(tx *models.Store) error {
		var err error
		if ids, err = tx.RevokeUserSessions(ctx, p.UserID, p.SessionID, models.EventSignedOutOthers, now); err != nil {
			return err
		}
		return tx.RecordEvent(ctx, &models.SecurityEvent{UserID: p.UserID, SessionID: p.SessionID, Kind: models.EventSignedOutOthers, IP: ip, CreatedAt: now})
	})
	if err == nil {
		s.revoked(p.UserID, ids...)
	}
	return err
}

// SignOutEverywhere bumps the user's token_version and signs out every session, this one too.
func (s *Service) SignOutEverywhere(ctx context.Context, p *Principal, ip string) error {
	if err := s.requireRecentAuth(p); err != nil {
		return err
	}
	return s.revokeEverything(ctx, p.UserID, p.SessionID, models.EventSignedOutEverywhere, ip)
}

func (s *Service) revokeEverything(ctx context.Context, userID, sessionID, kind, ip string) error {
	now := s.clock()
	var ids []string
	err := s.store.InTx(ctx, func(tx *models.Store) error {
		if _, err := tx.BumpTokenVersion(ctx, userID, now); err != nil {
			return err
		}
		var err error
		if ids, err = tx.RevokeUserSessions(ctx, userID, "", kind, now); err != nil {
			return err
		}
		return tx.RecordEvent(ctx, &models.SecurityEvent{UserID: userID, SessionID: sessionID, Kind: kind, IP: ip, CreatedAt: now})
	})
	if err == nil {
		s.revoked(userID, ids...)
	}
	return err
}

// RenameDevice sets the name of one of the user's live sessions.
func (s *Service) RenameDevice(ctx context.Context, userID, sessionID, name string) error {
	name, err := ValidateDeviceName("name", name)
	if err != nil {
		return err
	}
	if err := s.store.RenameSession(ctx, userID, sessionID, name, s.clock()); errors.Is(err, models.ErrNotFound) {
		return ErrNotFound
	} else if err != nil {
		return err
	}
	return nil
}

// Logout signs out the device session a refresh token belongs to. Any token of the family will
// do, since whoever holds an old one could replay it anyway. Unknown tokens change nothing.
func (s *Service) Logout(ctx context.Context, presented, ip string) error {
	if !wellFormedRefreshToken(presented) {
		return nil
	}
	now := s.clock()
	var family *models.DeviceSession
	err := s.store.InTx(ctx, func(tx *models.Store) error {
		d, err := tx.FamilyOf(ctx, hashToken(presented))
		if errors.Is(err, models.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		revoked, err := tx.RevokeSession(ctx, d.ID, models.EventSignedOut, now)
		if err != nil || !revoked {
			return err
		}
		family = d
		return tx.RecordEvent(ctx, &models.SecurityEvent{UserID: d.UserID, SessionID: d.ID, DeviceName: d.DeviceName, Kind: models.EventSignedOut, IP: ip, CreatedAt: now})
	})
	if err == nil && family != nil {
		s.revoked(family.UserID, family.ID)
	}
	return err
}

// ChangePassword checks the current password, stores the new one, bumps token_version and signs
// out every other device. This device stays signed in: it gets a new access token with the new
// version (its refresh token stays valid).
func (s *Service) ChangePassword(ctx context.Context, p *Principal, current, next, confirm, ip string) (*Issued, error) {
	if err := validatePassword("new_password", next); err != nil {
		return nil, err
	}
	if next != confirm {
		return nil, invalid("new_password_confirm", "The passwords do not match.")
	}
	user, err := s.store.UserByID(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	ok, err := s.passwords.Check(ctx, user.PasswordHash, current)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, invalid("current_password", "That is not your current password.")
	}
	hash, err := s.passwords.Hash(ctx, next)
	if err != nil {
		return nil, err
	}
	now := s.clock()
	var (
		version int64
		ids     []string
	)
	err = s.store.InTx(ctx, func(tx *models.Store) error {
		var err error
		if version, err = tx.SetPassword(ctx, p.UserID, hash, now); err != nil {
			return err
		}
		if ids, err = tx.RevokeUserSessions(ctx, p.UserID, p.SessionID, models.EventPasswordChanged, now); err != nil {
			return err
		}
		if err := tx.MarkAuthenticated(ctx, p.SessionID, now); err != nil {
			return err
		}
		return tx.RecordEvent(ctx, &models.SecurityEvent{UserID: p.UserID, SessionID: p.SessionID, Kind: models.EventPasswordChanged, IP: ip, CreatedAt: now})
	})
	if err != nil {
		return nil, err
	}
	s.revoked(p.UserID, append(ids, p.SessionID)...)
	access, expires, err := s.signAccess(p.UserID, p.SessionID, version, now)
	if err != nil {
		return nil, err
	}
	return &Issued{UserID: p.UserID, SessionID: p.SessionID, AccessToken: access, AccessExpiresAt: expires}, nil
}

// ConfirmPassword re-authenticates the user on this device for sensitive actions.
func (s *Service) ConfirmPassword(ctx context.Context, p *Principal, password string) error {
	user, err := s.store.UserByID(ctx, p.UserID)
	if err != nil {
		return err
	}
	ok, err := s.passwords.Check(ctx, user.PasswordHash, password)
	if err != nil {
		return err
	}
	if !ok {
		return invalid("password", "That is not your password.")
	}
	if err := s.store.MarkAuthenticated(ctx, p.SessionID, s.clock()); err != nil {
		return err
	}
	s.revoked(p.UserID, p.SessionID)
	return nil
}
