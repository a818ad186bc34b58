package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gatehouse/models"
)

// DeleteAccount deletes the signed-in person's account once the current password is right: every
// session, token, security event, link and known device goes with it (ON DELETE CASCADE), and so
// does any mail still waiting to be sent to the address. Each device that was signed in is told
// it was revoked.
func (s *Service) DeleteAccount(ctx context.Context, p *Principal, current, ip string) error {
	if current == "" {
		return invalid("delete_current_password", "Enter your current password.")
	}
	user, err := s.store.UserByID(ctx, p.UserID)
	if errors.Is(err, models.ErrNotFound) {
		return ErrSessionRevoked
	}
	if err != nil {
		return fmt.Errorf("read user: %w", err)
	}
	if err := s.checkCurrentPassword(ctx, user, current, "delete_current_password", "That is not your current password.", ip); err != nil {
		return err
	}
	var ended []string
	err = s.store.InTx(ctx, func(tx *models.Store) error {
		locked, err := tx.LockUser(ctx, p.UserID)
		if err != nil {
			return fmt.Errorf("lock user: %w", err)
		}
		if ended, err = tx.DeleteUser(ctx, p.UserID); err != nil {
			return fmt.Errorf("delete user: %w", err)
		}
		if err := tx.DeletePendingMailTo(ctx, locked.Email); err != nil {
			return fmt.Errorf("delete pending mail: %w", err)
		}
		return nil
	})
	if errors.Is(err, models.ErrNotFound) {
		return ErrSessionRevoked
	}
	if err != nil {
		return err
	}
	s.revoked(p.UserID, ended...)
	return nil
}

// Export is everything Gatehouse holds about one person, as they may download it: no password
// hash, token hash, token or cookie value.
type Export struct {
	Account        ExportAccount   `json:"account"`
	DeviceSessions []ExportSession `json:"device_sessions"`
	SecurityEvents []ExportEvent   `json:"security_events"`
	// SecondFactors are the person's authenticator apps and passkeys: names and dates, never a
	// secret, a key or a recovery code.
	SecondFactors     []ExportFactor `json:"second_factors"`
	RecoveryCodesLeft int            `json:"recovery_codes_left"`
}

// ExportFactor is one second factor or passkey in an Export.
type ExportFactor struct {
	Kind       string     `json:"kind"`
	Name       string     `json:"name"`
	AddedAt    time.Time  `json:"added_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

// ExportAccount is the account part of an Export.
type ExportAccount struct {
	ID            string    `json:"id"`
	Email         string    `json:"email"`
	EmailVerified bool      `json:"email_verified"`
	DisplayName   string    `json:"display_name"`
	CreatedAt     time.Time `json:"created_at"`
	SignInNotices bool      `json:"sign_in_notices"`
}

// ExportSession is one device session in an Export.
type ExportSession struct {
	ID         string     `json:"id"`
	DeviceName string     `json:"device_name"`
	UserAgent  string     `json:"user_agent"`
	CreatedIP  string     `json:"created_ip"`
	LastIP     string     `json:"last_ip"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt time.Time  `json:"last_used_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	Current    bool       `json:"current"`
}

// ExportEvent is one security event in an Export.
type ExportEvent struct {
	Kind       string    `json:"kind"`
	DeviceName string    `json:"device_name"`
	IP         string    `json:"ip"`
	Detail     string    `json:"detail,omitempty"`
	At         time.Time `json:"at"`
}

// ExportData gathers the signed-in person's data for download, read in one transaction so that
// the parts agree.
func (s *Service) ExportData(ctx context.Context, p *Principal) (*Export, error) {
	var out Export
	err := s.store.InTx(ctx, func(tx *models.Store) error {
		u, err := tx.UserByID(ctx, p.UserID)
		if err != nil {
			return fmt.Errorf("read user: %w", err)
		}
		a := accountOf(u)
		out.Account = ExportAccount{ID: a.ID, Email: a.Email, EmailVerified: a.EmailVerified, DisplayName: a.DisplayName,
			CreatedAt: a.CreatedAt, SignInNotices: a.SignInNotices}
		sessions, err := tx.UserSessions(ctx, p.UserID)
		if err != nil {
			return fmt.Errorf("read sessions: %w", err)
		}
		out.DeviceSessions = make([]ExportSession, 0, len(sessions))
		for _, d := range sessions {
			out.DeviceSessions = append(out.DeviceSessions, ExportSession{ID: d.ID, DeviceName: d.DeviceName, UserAgent: d.UserAgent,
				CreatedIP: d.CreatedIP, LastIP: d.LastIP, CreatedAt: d.CreatedAt, LastUsedAt: d.LastUsedAt, ExpiresAt: d.ExpiresAt,
				RevokedAt: d.RevokedAt, Current: d.ID == p.SessionID})
		}
		events, err := tx.UserEvents(ctx, p.UserID)
		if err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		out.SecurityEvents = make([]ExportEvent, 0, len(events))
		for _, e := range events {
			out.SecurityEvents = append(out.SecurityEvents, ExportEvent{Kind: e.Kind, DeviceName: e.DeviceName, IP: e.IP, Detail: e.Detail, At: e.CreatedAt})
		}
		factors, err := tx.Factors(ctx, p.UserID)
		if err != nil {
			return fmt.Errorf("read factors: %w", err)
		}
		out.SecondFactors = make([]ExportFactor, 0, len(factors))
		for _, f := range factors {
			out.SecondFactors = append(out.SecondFactors, ExportFactor{Kind: f.Kind, Name: f.Name, AddedAt: f.CreatedAt, LastUsedAt: f.LastUsedAt})
		}
		left, err := tx.RecoveryCodesLeft(ctx, p.UserID)
		if err != nil {
			return fmt.Errorf("count recovery codes: %w", err)
		}
		out.RecoveryCodesLeft = int(left)
		return nil
	})
	if errors.Is(err, models.ErrNotFound) {
		return nil, ErrSessionRevoked
	}
	if err != nil {
		return nil, err
	}
	return &out, nil
}
