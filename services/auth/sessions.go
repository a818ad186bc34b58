package auth

import (
	"context"
	"errors"
	"fmt"

	"gatehouse/models"
	mailviews "gatehouse/views/mail"
)

// Sessions lists the user's live device sessions, most recently used first.
func (s *Service) Sessions(ctx context.Context, userID string) ([]Session, error) {
	rows, err := s.store.LiveSessions(ctx, userID, s.clock())
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	list := make([]Session, 0, len(rows))
	for i := range rows {
		list = append(list, sessionOf(&rows[i]))
	}
	return list, nil
}

// Events lists the user's recent security events, newest first.
func (s *Service) Events(ctx context.Context, userID string, limit int) ([]Event, error) {
	rows, err := s.store.RecentEvents(ctx, userID, limit)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	list := make([]Event, 0, len(rows))
	for i := range rows {
		list = append(list, eventOf(&rows[i]))
	}
	return list, nil
}

// Account returns the account behind a principal.
func (s *Service) Account(ctx context.Context, userID string) (*Account, error) {
	u, err := s.store.UserByID(ctx, userID)
	if errors.Is(err, models.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read account: %w", err)
	}
	return accountOf(u), nil
}

// SignOutDevice signs out one of the user's sessions; ErrNotFound for an unknown, already
// signed-out or another user's session.
func (s *Service) SignOutDevice(ctx context.Context, userID, sessionID, ip string) error {
	if !wellFormedID(sessionID) {
		return ErrNotFound
	}
	now := s.clock()
	err := s.store.InTx(ctx, func(tx *models.Store) error {
		d, err := tx.LiveSessionOfUser(ctx, userID, sessionID, now)
		if err != nil {
			return fmt.Errorf("find session %s: %w", sessionID, err)
		}
		revoked, err := tx.RevokeSession(ctx, d.ID, models.EventSignedOut, now)
		if err != nil {
			return fmt.Errorf("sign out session %s: %w", d.ID, err)
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
		// The user's row first, as every transaction that touches several of their sessions
		// does: two of them then never lock the sessions in opposite orders.
		if _, err := tx.LockUser(ctx, p.UserID); err != nil {
			return fmt.Errorf("lock user: %w", err)
		}
		var err error
		if ids, err = tx.RevokeUserSessions(ctx, p.UserID, p.SessionID, models.EventSignedOutOthers, now); err != nil {
			return fmt.Errorf("sign out the other sessions: %w", err)
		}
		if len(ids) == 0 {
			return nil // nothing changed, nothing to record
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
		var err error
		if _, ids, err = tx.SignOutEverywhere(ctx, userID, kind, now); err != nil {
			return fmt.Errorf("sign out everywhere: %w", err)
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
	if !wellFormedID(sessionID) {
		return ErrNotFound
	}
	name, err := ValidateDeviceName("name", name)
	if err != nil {
		return err
	}
	if err := s.store.RenameSession(ctx, userID, sessionID, name, s.clock()); errors.Is(err, models.ErrNotFound) {
		return ErrNotFound
	} else if err != nil {
		return fmt.Errorf("rename session %s: %w", sessionID, err)
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
			return fmt.Errorf("find the token's family: %w", err)
		}
		revoked, err := tx.RevokeSession(ctx, d.ID, models.EventSignedOut, now)
		if err != nil {
			return fmt.Errorf("sign out session %s: %w", d.ID, err)
		}
		if !revoked {
			return nil
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
// out every device, this one too: no token issued before the change works anywhere after it, not
// even a copy of this browser's own refresh token. This device goes on in a new session (same
// device id and name), whose tokens the caller stores.
func (s *Service) ChangePassword(ctx context.Context, p *Principal, current, next, confirm, ip string) (*Issued, error) {
	if err := validatePasswordChange(current, next, confirm); err != nil {
		return nil, err
	}
	user, err := s.store.UserByID(ctx, p.UserID)
	if err != nil {
		return nil, fmt.Errorf("read user: %w", err)
	}
	if err := s.checkCurrentPassword(ctx, user, current, "current_password", "That is not your current password.", ip); err != nil {
		return nil, err
	}
	hash, err := s.passwords.Hash(ctx, next)
	if err != nil {
		return nil, fmt.Errorf("hash the new password: %w", err)
	}
	var (
		version int64
		ended   []string
		started *newSession
	)
	err = s.store.InTx(ctx, func(tx *models.Store) error {
		now := s.clock()
		// The user's lock first: a password change or sign-out that committed meanwhile is then
		// seen, and this session may be signed out by it.
		if _, err := tx.LockUser(ctx, p.UserID); err != nil {
			return fmt.Errorf("lock user: %w", err)
		}
		this, err := tx.LiveSessionOfUser(ctx, p.UserID, p.SessionID, now)
		if err != nil {
			return fmt.Errorf("read this session: %w", err)
		}
		if version, ended, err = tx.SetPassword(ctx, p.UserID, hash, models.EventPasswordChanged, now); err != nil {
			return fmt.Errorf("set password: %w", err)
		}
		client := Client{DeviceID: this.DeviceID, DeviceName: this.DeviceName, UserAgent: this.UserAgent, IP: ip}
		if started, _, err = s.startSessionInTx(ctx, tx, user, client, this.AMR); err != nil {
			return err
		}
		if err := s.queueMail(ctx, tx, user.Email, mailviews.PasswordChanged{Email: user.Email, At: now, ResetLink: s.link("/password/forgot", "")}); err != nil {
			return err
		}
		return tx.RecordEvent(ctx, &models.SecurityEvent{UserID: p.UserID, SessionID: started.row.ID, DeviceName: this.DeviceName, Kind: models.EventPasswordChanged, IP: ip, CreatedAt: now})
	})
	if errors.Is(err, models.ErrNotFound) {
		return nil, ErrSessionRevoked
	}
	if err != nil {
		return nil, err
	}
	s.revoked(p.UserID, ended...)
	s.mailSent()
	return s.issueStarted(p.UserID, version, user.EmailVerified(), started)
}

// ConfirmPassword re-authenticates the user on this device for sensitive actions.
func (s *Service) ConfirmPassword(ctx context.Context, p *Principal, password, ip string) error {
	user, err := s.store.UserByID(ctx, p.UserID)
	if err != nil {
		return fmt.Errorf("read user: %w", err)
	}
	if err := s.checkCurrentPassword(ctx, user, password, "password", "That is not your password.", ip); err != nil {
		return err
	}
	if err := s.store.MarkAuthenticated(ctx, p.SessionID, s.clock()); err != nil {
		return fmt.Errorf("mark authenticated: %w", err)
	}
	s.revoked(p.UserID, p.SessionID)
	return nil
}

// checkCurrentPassword checks a signed-in user's password; a wrong one is recorded as a security
// event and answered with a ValidationError that wraps ErrWrongPassword.
func (s *Service) checkCurrentPassword(ctx context.Context, user *models.User, password, field, message, ip string) error {
	ok, err := s.passwords.Check(ctx, user.PasswordHash, password)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	event := &models.SecurityEvent{UserID: user.ID, Kind: models.EventPasswordCheckFailed, IP: ip, CreatedAt: s.clock()}
	if err := s.store.RecordEvent(ctx, event); err != nil {
		return fmt.Errorf("record failed password check: %w", err)
	}
	return wrongPassword(field, message)
}

// wellFormedID tells whether id could be one Gatehouse made (newID: 16 random bytes, base64url),
// so that no other outside value, such as invalid UTF-8, reaches a query.
func wellFormedID(id string) bool {
	if len(id) != 22 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
