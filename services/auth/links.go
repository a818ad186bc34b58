package auth

// Account recovery and email: password reset, address verification, email change and its undo,
// and the notices a person gets by mail. Every link carries a single-use token of 256 random bits;
// only its SHA-256 is stored (models.LinkToken). Opening a link never uses it: its page posts the
// token back, and only that POST does (UseLinkToken, one guarded statement). Each message is
// written to the outbox in the transaction of the action it is about, so nothing is sent for an
// action that did not happen, and the background sender delivers it.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"gatehouse/models"
	"gatehouse/services/mail"
	mailviews "gatehouse/views/mail"
)

// EmailVerification is how much an unverified address matters.
type EmailVerification string

// The settings of GATEHOUSE_EMAIL_VERIFICATION.
const (
	VerificationOff      EmailVerification = "off"      // no verification links are sent
	VerificationOptional EmailVerification = "optional" // the account works; the portal asks
	VerificationRequired EmailVerification = "required" // no sign-in until the address is verified
)

// Lifetimes of the links that are not configurable.
const (
	verifyTTL      = 24 * time.Hour
	emailChangeTTL = 24 * time.Hour
	emailUndoTTL   = 7 * 24 * time.Hour
)

// Mailer writes a message in the action's transaction and is told when that transaction committed.
type Mailer interface {
	Enqueue(ctx context.Context, tx *models.Store, m mail.Message) error
	Notify()
}

// SetMailer gives the service where to write messages; without one, no mail is written.
func (s *Service) SetMailer(m Mailer) { s.mailer = m }

// queueMail renders e and writes it, to address, in tx. Without a mailer it does nothing.
func (s *Service) queueMail(ctx context.Context, tx *models.Store, to string, e mailviews.Email) error {
	if s.mailer == nil {
		return nil
	}
	r, err := mailviews.Render(ctx, e)
	if err != nil {
		return fmt.Errorf("render %s mail: %w", e.Kind(), err)
	}
	m := mail.Message{Kind: r.Kind, To: mail.Address{Address: to}, Subject: r.Subject, Text: r.Text, HTML: r.HTML}
	if err := s.mailer.Enqueue(ctx, tx, m); err != nil {
		return fmt.Errorf("queue %s mail: %w", e.Kind(), err)
	}
	return nil
}

// mailSent wakes the sender once a transaction that queued mail has committed.
func (s *Service) mailSent() {
	if s.mailer != nil {
		s.mailer.Notify()
	}
}

// link is an absolute URL on the portal's base URL with the token in its query.
func (s *Service) link(path, token string) string {
	u := s.cfg.Issuer + path
	if token != "" {
		u += "?token=" + url.QueryEscape(token)
	}
	return u
}

// newLink stores a new link token for user and purpose (superseding the older ones) in tx and
// returns the token itself, which only the message carries.
func (s *Service) newLink(ctx context.Context, tx *models.Store, userID, purpose, email, other string, ttl time.Duration, now time.Time) (string, error) {
	// Links of one user queue on the user's row, so that each new one sees and supersedes the
	// ones committed before it (two at once under READ COMMITTED would both stay usable).
	if _, err := tx.LockUser(ctx, userID); err != nil {
		return "", fmt.Errorf("lock user: %w", err)
	}
	token, err := newRefreshToken(s.rand)
	if err != nil {
		return "", err
	}
	t := &models.LinkToken{TokenHash: hashToken(token), UserID: userID, Purpose: purpose, Email: email, OtherEmail: other,
		CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := tx.CreateLinkToken(ctx, t); err != nil {
		return "", fmt.Errorf("store %s link: %w", purpose, err)
	}
	return token, nil
}

// useLink uses up a link token in tx; ErrInvalidToken when it is malformed, unknown, used,
// superseded or expired (one answer for all: a link that no longer works).
func (s *Service) useLink(ctx context.Context, tx *models.Store, token, purpose string, now time.Time) (*models.LinkToken, error) {
	if !wellFormedRefreshToken(token) {
		return nil, ErrInvalidToken
	}
	t, err := tx.UseLinkToken(ctx, hashToken(token), purpose, now)
	if errors.Is(err, models.ErrNotFound) {
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, fmt.Errorf("use %s link: %w", purpose, err)
	}
	return t, nil
}

// CheckLink tells whether a link still works, without using it (for the page the link opens):
// the checks of the POST that would use it, so the page never shows a form that will be refused.
func (s *Service) CheckLink(ctx context.Context, token, purpose string) error {
	if !wellFormedRefreshToken(token) {
		return ErrInvalidToken
	}
	link, err := s.store.UsableLinkToken(ctx, hashToken(token), purpose, s.clock())
	if errors.Is(err, models.ErrNotFound) {
		return ErrInvalidToken
	}
	if err != nil {
		return fmt.Errorf("look up %s link: %w", purpose, err)
	}
	u, err := s.store.UserByID(ctx, link.UserID)
	if err != nil {
		return fmt.Errorf("read user: %w", err)
	}
	if !linkStillApplies(link, u) {
		return ErrInvalidToken
	}
	return nil
}

// linkStillApplies: the account is not disabled and still has the address the link is about
// (the one it was sent to; for an email change, the one being replaced).
func linkStillApplies(link *models.LinkToken, u *models.User) bool {
	switch {
	case u.Disabled():
		return false
	case link.Purpose == models.LinkEmailChange:
		return u.Email == link.OtherEmail
	case link.Purpose == models.LinkEmailUndo:
		return true // it restores link.OtherEmail whatever happened since
	default:
		return u.Email == link.Email
	}
}

// RequestPasswordReset sends a reset link to the account with this address, if there is one that
// is not disabled. The caller answers the same whatever happens, at once: the work is done after
// the answer, so neither the message nor the time taken tells whether the address has an account.
func (s *Service) RequestPasswordReset(ctx context.Context, rawEmail string) {
	email, err := NormalizeEmail(rawEmail)
	if err != nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	s.background.Add(1)
	go func() {
		defer s.background.Done()
		if err := s.sendPasswordReset(ctx, email); err != nil {
			s.log.Warn("could not queue a password-reset link", "error", err)
		}
	}()
}

func (s *Service) sendPasswordReset(ctx context.Context, email string) error {
	now := s.clock()
	err := s.store.InTx(ctx, func(tx *models.Store) error {
		u, err := tx.UserByEmail(ctx, email)
		if errors.Is(err, models.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("find user: %w", err)
		}
		if u.Disabled() {
			return nil
		}
		token, err := s.newLink(ctx, tx, u.ID, models.LinkPasswordReset, u.Email, "", s.cfg.ResetTTL, now)
		if err != nil {
			return err
		}
		return s.queueMail(ctx, tx, u.Email, mailviews.PasswordReset{Email: u.Email, Link: s.link("/password/reset", token), ValidFor: s.cfg.ResetTTL})
	})
	if err == nil {
		s.mailSent()
	}
	return err
}

// ResetPassword sets a new password with a reset link: token_version is bumped, every device is
// signed out, the address counts as verified (the link reached it), the owner is told by mail, and
// this device goes on in a new session. On an account with a second factor the link alone does not
// sign in: the answer is a *SecondFactorRequired whose challenge the second step completes (an
// attacker who reads the mailbox must still pass the second factor).
func (s *Service) ResetPassword(ctx context.Context, token, next, confirm string, c Client) (*Issued, error) {
	if err := validatePasswordChoice("new_password", next, "new_password_confirm", confirm); err != nil {
		return nil, err
	}
	// A dead link is refused before the argon2 hash, so bogus tokens cost no hashing; the
	// transaction below uses the link, and checks it again under the user's lock.
	if err := s.CheckLink(ctx, token, models.LinkPasswordReset); err != nil {
		return nil, err
	}
	hash, err := s.passwords.Hash(ctx, next)
	if err != nil {
		return nil, fmt.Errorf("hash the new password: %w", err)
	}
	now := s.clock()
	var (
		user    *models.User
		version int64
		ended   []string
		started *newSession
		second  error // *SecondFactorRequired when the account has a second factor
	)
	err = s.store.InTx(ctx, func(tx *models.Store) error {
		link, err := s.useLink(ctx, tx, token, models.LinkPasswordReset, now)
		if err != nil {
			return err
		}
		if user, err = tx.LockUser(ctx, link.UserID); err != nil {
			return fmt.Errorf("lock user: %w", err)
		}
		if !linkStillApplies(link, user) {
			return ErrInvalidToken // disabled, or the address changed since the link was sent
		}
		if version, ended, err = tx.SetPassword(ctx, user.ID, hash, models.EventPasswordReset, now); err != nil {
			return fmt.Errorf("set password: %w", err)
		}
		if !user.EmailVerified() {
			if err := tx.MarkEmailVerified(ctx, user.ID, user.Email, now); err != nil {
				return fmt.Errorf("mark verified: %w", err)
			}
		}
		event := &models.SecurityEvent{UserID: user.ID, Kind: models.EventPasswordReset, IP: c.IP, CreatedAt: now}
		needsSecond, err := s.needsSecondStep(ctx, tx, user.ID)
		if err != nil {
			return err
		}
		if needsSecond {
			second = s.secondStep(ctx, tx, user.ID, version, c)
			if _, ok := second.(*SecondFactorRequired); !ok {
				return second
			}
		} else {
			if started, _, err = s.startSessionInTx(ctx, tx, user, c, AMRPassword); err != nil {
				return err
			}
			event.SessionID, event.DeviceName = started.row.ID, started.row.DeviceName
		}
		if err := tx.RecordEvent(ctx, event); err != nil {
			return fmt.Errorf("record reset: %w", err)
		}
		return s.queueMail(ctx, tx, user.Email, mailviews.PasswordChanged{Email: user.Email, At: now, ResetLink: s.link("/password/forgot", "")})
	})
	if err != nil {
		return nil, err
	}
	s.mailSent()
	s.revoked(user.ID, ended...)
	if second != nil {
		return nil, second
	}
	return s.issueStarted(user.ID, version, true, started)
}

// SendVerification sends a link that verifies the user's current address (after sign-up, or when
// the person asks again). Nothing is sent when verification is off or the address is verified.
func (s *Service) SendVerification(ctx context.Context, userID string) error {
	if s.cfg.EmailVerification == VerificationOff {
		return nil
	}
	now := s.clock()
	sent := false
	err := s.store.InTx(ctx, func(tx *models.Store) error {
		u, err := tx.UserByID(ctx, userID)
		if err != nil {
			return fmt.Errorf("read user: %w", err)
		}
		if u.EmailVerified() || u.Disabled() {
			return nil
		}
		token, err := s.newLink(ctx, tx, u.ID, models.LinkVerifyEmail, u.Email, "", verifyTTL, now)
		if err != nil {
			return err
		}
		sent = true
		return s.queueMail(ctx, tx, u.Email, mailviews.VerifyEmail{Email: u.Email, Link: s.link("/verify-email", token), ValidFor: verifyTTL})
	})
	if err == nil && sent {
		s.mailSent()
	}
	return err
}

// VerifyEmail marks an address verified with the link that was sent to it.
func (s *Service) VerifyEmail(ctx context.Context, token string) error {
	now := s.clock()
	var userID string
	err := s.store.InTx(ctx, func(tx *models.Store) error {
		link, err := s.useLink(ctx, tx, token, models.LinkVerifyEmail, now)
		if err != nil {
			return err
		}
		userID = link.UserID
		err = tx.MarkEmailVerified(ctx, link.UserID, link.Email, now)
		if errors.Is(err, models.ErrNotFound) {
			return ErrInvalidToken // the address changed since the link was sent
		}
		if err != nil {
			return fmt.Errorf("mark verified: %w", err)
		}
		return tx.RecordEvent(ctx, &models.SecurityEvent{UserID: link.UserID, Kind: models.EventEmailVerified, CreatedAt: now})
	})
	if err == nil {
		s.revoked(userID) // /api/me answers email_verified from the revocation cache
	}
	return err
}

// MarkEmailVerified marks the user's current address verified without a link (an operator's
// `gatehouse user create --verified`).
func (s *Service) MarkEmailVerified(ctx context.Context, userID string) error {
	u, err := s.store.UserByID(ctx, userID)
	if err != nil {
		return fmt.Errorf("read user: %w", err)
	}
	if err := s.store.MarkEmailVerified(ctx, u.ID, u.Email, s.clock()); err != nil {
		return fmt.Errorf("mark verified: %w", err)
	}
	return nil
}

// RequestEmailChange sends a confirmation link to a new address, after the current password.
// The address changes only when that link is used.
func (s *Service) RequestEmailChange(ctx context.Context, p *Principal, rawEmail, password, ip string) error {
	var errs ValidationErrors
	email, err := NormalizeEmail(rawEmail)
	if err != nil {
		errs.add(invalidField(err, "new_email"))
	}
	if password == "" {
		errs.add(invalid("current_password", "Enter your current password."))
	}
	if err := errs.err(); err != nil {
		return err // every field's error at once, before the password is checked
	}
	user, err := s.store.UserByID(ctx, p.UserID)
	if err != nil {
		return fmt.Errorf("read user: %w", err)
	}
	if email == user.Email {
		return invalid("new_email", "That is already your address.")
	}
	if err := s.checkCurrentPassword(ctx, user, password, "current_password", "That is not your current password.", ip); err != nil {
		return err
	}
	now := s.clock()
	err = s.store.InTx(ctx, func(tx *models.Store) error {
		if _, err := tx.UserByEmail(ctx, email); err == nil {
			return ErrEmailTaken
		} else if !errors.Is(err, models.ErrNotFound) {
			return fmt.Errorf("look up the new address: %w", err)
		}
		token, err := s.newLink(ctx, tx, user.ID, models.LinkEmailChange, email, user.Email, emailChangeTTL, now)
		if err != nil {
			return err
		}
		return s.queueMail(ctx, tx, email, mailviews.ConfirmEmailChange{NewEmail: email, Link: s.link("/account/email/confirm", token), ValidFor: emailChangeTTL})
	})
	if err == nil {
		s.mailSent()
	}
	return err
}

// ConfirmEmailChange makes the new address the account's (verified: the link reached it) and
// tells the old address, with a link that undoes the change.
func (s *Service) ConfirmEmailChange(ctx context.Context, token string) error {
	now := s.clock()
	var userID string
	err := s.store.InTx(ctx, func(tx *models.Store) error {
		link, err := s.useLink(ctx, tx, token, models.LinkEmailChange, now)
		if err != nil {
			return err
		}
		userID = link.UserID
		u, err := tx.LockUser(ctx, link.UserID)
		if err != nil {
			return fmt.Errorf("lock user: %w", err)
		}
		if !linkStillApplies(link, u) {
			return ErrInvalidToken // the address changed another way since the link was sent
		}
		if err := tx.SetEmail(ctx, u.ID, link.Email, &now, now); errors.Is(err, models.ErrConflict) {
			return ErrEmailTaken
		} else if err != nil {
			return fmt.Errorf("set the new address: %w", err)
		}
		undo, err := s.newLink(ctx, tx, u.ID, models.LinkEmailUndo, link.Email, u.Email, emailUndoTTL, now)
		if err != nil {
			return err
		}
		if err := tx.RecordEvent(ctx, &models.SecurityEvent{UserID: u.ID, Kind: models.EventEmailChanged, CreatedAt: now}); err != nil {
			return fmt.Errorf("record the change: %w", err)
		}
		return s.queueMail(ctx, tx, u.Email, mailviews.EmailChanged{OldEmail: u.Email, NewEmail: link.Email, At: now,
			UndoLink: s.link("/account/email/undo", undo), UndoValidFor: emailUndoTTL})
	})
	if err == nil {
		s.mailSent()
		s.revoked(userID)
	}
	return err
}

// UndoEmailChange puts the old address back with the link sent to it, and signs the account out
// everywhere: whoever changed the address may hold a session.
func (s *Service) UndoEmailChange(ctx context.Context, token string) error {
	now := s.clock()
	var (
		userID string
		ended  []string
	)
	err := s.store.InTx(ctx, func(tx *models.Store) error {
		link, err := s.useLink(ctx, tx, token, models.LinkEmailUndo, now)
		if err != nil {
			return err
		}
		userID = link.UserID
		u, err := tx.LockUser(ctx, link.UserID)
		if err != nil {
			return fmt.Errorf("lock user: %w", err)
		}
		if !linkStillApplies(link, u) {
			return ErrInvalidToken // disabled since
		}
		if err := tx.SetEmail(ctx, link.UserID, link.OtherEmail, &now, now); errors.Is(err, models.ErrConflict) {
			return ErrEmailTaken
		} else if err != nil {
			return fmt.Errorf("restore the address: %w", err)
		}
		if _, ended, err = tx.SignOutEverywhere(ctx, link.UserID, models.EventEmailChangeUndone, now); err != nil {
			return fmt.Errorf("sign out everywhere: %w", err)
		}
		return tx.RecordEvent(ctx, &models.SecurityEvent{UserID: link.UserID, Kind: models.EventEmailChangeUndone, CreatedAt: now})
	})
	if err == nil {
		s.revoked(userID, ended...)
	}
	return err
}

// SetSignInNotices turns the new-device sign-in notices on or off.
func (s *Service) SetSignInNotices(ctx context.Context, userID string, on bool) error {
	if err := s.store.SetNotifySignIns(ctx, userID, on, s.clock()); err != nil {
		return fmt.Errorf("set sign-in notices: %w", err)
	}
	return nil
}

// noticeNewDevice remembers the device of a sign-in and, when the account has signed in before
// but never on this device, queues a notice to its owner (unless they turned notices off).
func (s *Service) noticeNewDevice(ctx context.Context, tx *models.Store, user *models.User, c Client, row *models.DeviceSession) error {
	known := false
	for _, device := range []string{c.Replaces, c.DeviceID} {
		if device == "" {
			continue
		}
		k, err := tx.KnownDevice(ctx, user.ID, device)
		if err != nil {
			return fmt.Errorf("look up known device: %w", err)
		}
		known = known || k
	}
	signedInBefore, err := tx.HasKnownDevices(ctx, user.ID)
	if err != nil {
		return fmt.Errorf("look up known devices: %w", err)
	}
	if _, err := tx.RememberDevice(ctx, user.ID, c.DeviceID, row.CreatedAt); err != nil {
		return fmt.Errorf("remember device: %w", err)
	}
	if known || !signedInBefore || !user.NotifySignIns {
		return nil
	}
	browser, os := DescribeUserAgent(row.UserAgent)
	return s.queueMail(ctx, tx, user.Email, mailviews.NewSignIn{Email: user.Email, Device: row.DeviceName, Browser: browser, OS: os,
		IP: c.IP, Place: s.locate(c.IP), At: row.CreatedAt, DevicesLink: s.link("/devices", ""), SettingsLink: s.link("/account", "")})
}

// invalidField moves a validation error to another form field.
func invalidField(err error, field string) error {
	var v *ValidationError
	if errors.As(err, &v) {
		return &ValidationError{Field: field, Message: v.Message, Cause: v.Cause}
	}
	return err
}
