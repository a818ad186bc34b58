package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gatehouse/models"
	mailviews "gatehouse/views/mail"
)

// Refresh outcomes, as counted in metrics.
const (
	RefreshOK         = "ok"
	RefreshGraceRetry = "grace_retry"
	RefreshReused     = "reused"
	RefreshExpired    = "expired"
	RefreshRevoked    = "revoked"
	RefreshInvalid    = "invalid"
)

// Refresh rotates a refresh token (token rules 1–5 and 7):
//
//   - Rotation: the presented token is replaced in its family by its successor, and a new access
//     token is signed with the user's current token_version.
//   - Idempotent retry: a token rotated less than RefreshGrace ago whose successor is still unused
//     gets the same successor again (successors are derived from the token, see successorKey).
//   - Reuse detection: any other rotated token of the family revokes the family and records a
//     token_reused event; the caller gets ErrTokenReused.
//   - No forks: the live token is one column of the session row, changed under that row's lock.
//   - Lifetimes: the idle expiry of the live token and the absolute expiry of the session.
//
// The common case is the guarded rotation alone (rotateGuarded), one statement on either
// database: on PostgreSQL one round trip; on SQLite an UPDATE … RETURNING on the writer, whose
// history row a trigger writes. Anything else is decided in one transaction that holds the
// family's row lock.
func (s *Service) Refresh(ctx context.Context, presented string, c Client) (*Issued, error) {
	if !wellFormedRefreshToken(presented) {
		s.refreshOutcome(RefreshInvalid)
		return nil, ErrInvalidToken
	}
	now := s.clock()
	successor := s.successor.successor(presented)
	p := models.RotateParams{
		Hash: hashToken(presented), SuccessorHash: hashToken(successor), Now: now,
		IdleExpiry: now.Add(s.cfg.RefreshIdleTTL), DeviceID: c.DeviceID, DeviceName: c.DeviceName, IP: c.IP,
	}
	if !s.transactionalRefresh {
		r, err := s.rotateGuarded(ctx, p)
		if err == nil {
			s.refreshOutcome(RefreshOK)
			return s.issue(r.UserID, r.SessionID, r.TokenVersion, r.EmailVerified, r.AMR, successor, r.TokenExpiresAt, now)
		}
		if !errors.Is(err, models.ErrNotFound) {
			return nil, err
		}
	}
	return s.refreshInTx(ctx, p, successor)
}

// refreshInTx decides a refresh the guarded rotation did not take.
func (s *Service) refreshInTx(ctx context.Context, p models.RotateParams, successor string) (*Issued, error) {
	var (
		outcome string
		result  *Issued
		family  *models.DeviceSession
	)
	err := s.store.InTx(ctx, func(tx *models.Store) error {
		outcome, result, family = "", nil, nil
		d, err := tx.FamilyOf(ctx, p.Hash)
		if errors.Is(err, models.ErrNotFound) {
			outcome = RefreshInvalid
			return nil
		}
		if err != nil {
			return fmt.Errorf("find the token's family: %w", err)
		}
		family = d
		user, err := tx.UserByID(ctx, d.UserID)
		if err != nil {
			return fmt.Errorf("read user of session %s: %w", d.ID, err)
		}
		switch {
		case familyClosed(d, user.Disabled()):
			outcome = RefreshRevoked
		case rotatable(d, p) && sameDevice(d, p):
			outcome, result, err = s.rotateLive(ctx, tx, d, user, p, successor)
		case s.inGrace(d, p) && sameDevice(d, p):
			outcome, result, err = s.graceRetry(ctx, tx, d, user, p, successor)
		case rotatable(d, p) || s.inGrace(d, p):
			outcome = RefreshInvalid // a usable token from another device: refused, family kept
		default:
			outcome, err = s.replayDetected(ctx, tx, d, user, p)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	s.refreshOutcome(outcome)
	switch outcome {
	case RefreshOK, RefreshGraceRetry:
		return result, nil
	case RefreshReused:
		s.mailSent()
		s.revoked(family.UserID, family.ID)
		return nil, ErrTokenReused
	case RefreshExpired:
		return nil, ErrTokenExpired
	case RefreshRevoked:
		return nil, ErrSessionRevoked
	default:
		return nil, ErrInvalidToken
	}
}

func (s *Service) rotateLive(ctx context.Context, tx *models.Store, d *models.DeviceSession, user *models.User, p models.RotateParams, successor string) (string, *Issued, error) {
	if expired(d, p.Now) {
		return RefreshExpired, nil, nil
	}
	if err := tx.Rotate(ctx, d, p, s.refreshExpiry(p.Now, d.ExpiresAt)); err != nil {
		return "", nil, fmt.Errorf("rotate session %s: %w", d.ID, err)
	}
	issued, err := s.issue(user.ID, d.ID, user.TokenVersion, user.EmailVerified(), d.AMR, successor, d.TokenExpiresAt, p.Now)
	return RefreshOK, issued, err
}

func (s *Service) graceRetry(ctx context.Context, tx *models.Store, d *models.DeviceSession, user *models.User, p models.RotateParams, successor string) (string, *Issued, error) {
	if expired(d, p.Now) {
		return RefreshExpired, nil, nil
	}
	if err := tx.TouchSession(ctx, d.ID, p.IP, p.Now); err != nil {
		return "", nil, fmt.Errorf("touch session %s: %w", d.ID, err)
	}
	issued, err := s.issue(user.ID, d.ID, user.TokenVersion, user.EmailVerified(), d.AMR, successor, d.TokenExpiresAt, p.Now)
	return RefreshGraceRetry, issued, err
}

// replayDetected revokes the family of a rotated token presented again out of grace.
func (s *Service) replayDetected(ctx context.Context, tx *models.Store, d *models.DeviceSession, user *models.User, p models.RotateParams) (string, error) {
	if _, err := tx.RevokeSession(ctx, d.ID, models.EventTokenReused, p.Now); err != nil {
		return "", fmt.Errorf("revoke replayed family %s: %w", d.ID, err)
	}
	err := tx.RecordEvent(ctx, &models.SecurityEvent{UserID: d.UserID, SessionID: d.ID, DeviceName: d.DeviceName,
		Kind: models.EventTokenReused, IP: p.IP, CreatedAt: p.Now})
	if err != nil {
		return "", fmt.Errorf("record the replay: %w", err)
	}
	err = s.queueMail(ctx, tx, user.Email, mailviews.TokenReplayed{Email: user.Email, Device: d.DeviceName, IP: p.IP, At: p.Now, DevicesLink: s.link("/devices", "")})
	return RefreshReused, err
}

func (s *Service) issue(userID, sessionID string, version int64, verified bool, amr, refresh string, refreshExpires, now time.Time) (*Issued, error) {
	access, expires, err := s.signAccess(userID, sessionID, version, verified, amr, now)
	if err != nil {
		return nil, err
	}
	return &Issued{UserID: userID, SessionID: sessionID, AccessToken: access, AccessExpiresAt: expires,
		RefreshToken: refresh, RefreshExpiresAt: refreshExpires}, nil
}
