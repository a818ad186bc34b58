package auth

import (
	"context"
	"errors"
	"time"

	"gatehouse/models"
)

// Principal is who an access token speaks for.
type Principal struct {
	UserID          string
	Email           string
	DisplayName     string
	SessionID       string
	Version         int64
	EmailVerified   bool // now, not when the token was issued
	AuthenticatedAt time.Time
}

// AccessStates answers the revocation questions Verify asks. The store answers them from the
// database; a cache (services/revocation) answers from memory and is invalidated on every change.
type AccessStates interface {
	AccessStateOf(ctx context.Context, sessionID string) (*models.AccessState, error)
}

// SetAccessStates replaces where Verify reads revocation state from.
func (s *Service) SetAccessStates(states AccessStates) { s.states = states }

// Verify checks an access token (token rule 6): signature, algorithm, issuer and expiry, then
// revocation: rejected at once when its ver is older than the user's token_version, when its
// session is signed out or past its lifetime, or when the user is disabled.
func (s *Service) Verify(ctx context.Context, raw string) (*Principal, error) {
	claims, err := s.parseAccess(raw)
	if err != nil {
		return nil, err
	}
	state, err := s.states.AccessStateOf(ctx, claims.SessionID)
	if errors.Is(err, models.ErrNotFound) {
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, err
	}
	switch {
	case state.UserID != claims.Subject:
		return nil, ErrInvalidToken
	case accessRevoked(state, claims.Version, s.now()):
		return nil, ErrSessionRevoked
	}
	return &Principal{UserID: claims.Subject, Email: state.Email, DisplayName: state.DisplayName, SessionID: claims.SessionID, Version: claims.Version, EmailVerified: state.EmailVerified, AuthenticatedAt: state.AuthenticatedAt}, nil
}

// SecurityReauthWindow is how recently the password (or a second factor, or a passkey) must have
// been entered on this device to add or remove a factor or make new recovery codes, whatever
// ReauthWindow says (which may be off): those changes decide who can sign in.
const SecurityReauthWindow = 10 * time.Minute

// RequireSecurityReauth answers ErrReauthRequired when p last authenticated longer ago than
// SecurityReauthWindow (or ReauthWindow, when that is shorter and set).
func (s *Service) RequireSecurityReauth(p *Principal) error {
	window := SecurityReauthWindow
	if s.cfg.ReauthWindow > 0 && s.cfg.ReauthWindow < window {
		window = s.cfg.ReauthWindow
	}
	if s.now().Sub(p.AuthenticatedAt) > window {
		return ErrReauthRequired
	}
	return nil
}

// requireRecentAuth enforces re-authentication for sensitive actions (ASVS 7.5.2): when the
// password was last entered on this device longer ago than ReauthWindow, the caller must confirm it.
func (s *Service) requireRecentAuth(p *Principal) error {
	if s.cfg.ReauthWindow > 0 && s.now().Sub(p.AuthenticatedAt) > s.cfg.ReauthWindow {
		return ErrReauthRequired
	}
	return nil
}
