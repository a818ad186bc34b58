package auth

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gatehouse/models"
)

// Client describes the device a request comes from.
type Client struct {
	DeviceID   string // stable per device: the device cookie or X-Device-Id
	DeviceName string // optional name the app or user gives the device
	UserAgent  string
	IP         string
}

// Issued is what a sign-in or refresh hands the client.
type Issued struct {
	UserID           string
	SessionID        string
	AccessToken      string
	AccessExpiresAt  time.Time
	RefreshToken     string
	RefreshExpiresAt time.Time
}

// NormalizeEmail trims and lower-cases an email and checks that it is one.
func NormalizeEmail(raw string) (string, error) {
	email := strings.ToLower(strings.TrimSpace(raw))
	if email == "" {
		return "", invalid("email", "Enter your email address.")
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || len(email) > 254 || !strings.Contains(email[strings.LastIndex(email, "@"):], ".") {
		return "", invalid("email", "Enter a valid email address, like name@example.com.")
	}
	return email, nil
}

// ValidateDeviceName checks a device name: 1 to 64 characters, no control characters.
func ValidateDeviceName(field, name string) (string, error) {
	name = strings.TrimSpace(name)
	n := utf8.RuneCountInString(name)
	if n == 0 || n > 64 || !utf8.ValidString(name) {
		return "", invalid(field, "Use 1 to 64 characters.")
	}
	if hasControl(name) {
		return "", invalid(field, "Use 1 to 64 characters without control characters.")
	}
	return name, nil
}

// SignIn checks email and password and starts a session on the client's device, replacing any
// earlier session of that device. Every failure is ErrInvalidCredentials, after the same work.
func (s *Service) SignIn(ctx context.Context, email, password string, c Client) (*Issued, error) {
	user, err := s.authenticate(ctx, email, password)
	if err != nil {
		s.loginOutcome(outcomeOf(err))
		return nil, err
	}
	issued, err := s.startSession(ctx, user, c)
	if err != nil {
		return nil, err
	}
	s.loginOutcome("ok")
	return issued, nil
}

func outcomeOf(err error) string {
	switch {
	case errors.Is(err, ErrInvalidCredentials):
		return "invalid_credentials"
	case errors.Is(err, ErrBusy):
		return "busy"
	default:
		return "error"
	}
}

func (s *Service) authenticate(ctx context.Context, rawEmail, password string) (*models.User, error) {
	email, emailErr := NormalizeEmail(rawEmail)
	var user *models.User
	hash := "" // unknown email: Check compares against the dummy hash, taking the same time
	if emailErr == nil {
		u, err := s.store.UserByEmail(ctx, email)
		switch {
		case err == nil:
			user, hash = u, u.PasswordHash
		case !errors.Is(err, models.ErrNotFound):
			return nil, err
		}
	}
	ok, err := s.passwords.Check(ctx, hash, password)
	if err != nil {
		return nil, err
	}
	if !ok || user == nil || user.Disabled() {
		return nil, ErrInvalidCredentials
	}
	return user, nil
}

// SignUp creates an account and signs it in on the client's device.
func (s *Service) SignUp(ctx context.Context, email, password, displayName string, c Client) (*Issued, error) {
	user, err := s.CreateUser(ctx, email, displayName, password)
	if err != nil {
		return nil, err
	}
	return s.startSession(ctx, user, c)
}

// startSession creates a device session and its first refresh token in one transaction,
// replacing the device's earlier session so that the devices list shows each device once.
func (s *Service) startSession(ctx context.Context, user *models.User, c Client) (*Issued, error) {
	now := s.clock()
	token, err := newRefreshToken(s.rand)
	if err != nil {
		return nil, err
	}
	id, err := s.newID()
	if err != nil {
		return nil, err
	}
	if c.DeviceID == "" {
		if c.DeviceID, err = s.newID(); err != nil {
			return nil, err
		}
	}
	userAgent := cleanText(c.UserAgent, 512)
	name := c.DeviceName
	if name == "" {
		name = DefaultDeviceName(userAgent)
	}
	expires := now.Add(s.cfg.SessionMaxAge)
	session := &models.DeviceSession{
		ID: id, UserID: user.ID, DeviceID: c.DeviceID, DeviceName: name, UserAgent: userAgent,
		CreatedIP: c.IP, LastIP: c.IP, CreatedAt: now, LastUsedAt: now, ExpiresAt: expires, AuthenticatedAt: now,
		TokenHash: hashToken(token), TokenExpiresAt: minTime(now.Add(s.cfg.RefreshIdleTTL), expires),
	}
	var replaced string
	err = s.store.InTx(ctx, func(tx *models.Store) error {
		// Sign-ins of one user queue here, so two at once on one device cannot both find no
		// live session and then collide on the one-live-session-per-device index.
		if _, err := tx.LockUser(ctx, user.ID); err != nil {
			return err
		}
		if old, err := tx.LiveSessionOnDevice(ctx, user.ID, c.DeviceID); err == nil {
			if _, err := tx.RevokeSession(ctx, old.ID, "replaced", now); err != nil {
				return err
			}
			replaced = old.ID
		} else if !errors.Is(err, models.ErrNotFound) {
			return err
		}
		if err := tx.CreateSession(ctx, session); err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		return tx.RecordEvent(ctx, &models.SecurityEvent{UserID: user.ID, SessionID: id, DeviceName: name, Kind: models.EventSignedIn, IP: c.IP, CreatedAt: now})
	})
	if err != nil {
		return nil, err
	}
	if replaced != "" {
		s.revoked(user.ID, replaced)
	}
	access, accessExpires, err := s.signAccess(user.ID, id, user.TokenVersion, now)
	if err != nil {
		return nil, err
	}
	return &Issued{UserID: user.ID, SessionID: id, AccessToken: access, AccessExpiresAt: accessExpires,
		RefreshToken: token, RefreshExpiresAt: session.TokenExpiresAt}, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// cleanText makes outside text safe to store and show: valid UTF-8, no control characters
// (PostgreSQL refuses NUL), at most n bytes.
func cleanText(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// hasControl tells whether s holds control characters.
func hasControl(s string) bool { return strings.ContainsFunc(s, unicode.IsControl) }
