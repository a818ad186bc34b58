package auth

import (
	"context"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"gatehouse/models"
	mailviews "gatehouse/views/mail"
)

// TOTP is RFC 6238 as every authenticator app reads it: SHA-1, 6 digits, 30-second steps, a
// 160-bit secret; a code is accepted one step either side of now (clock skew), and once.
const (
	totpPeriod     = 30
	totpSkew       = 1
	totpSecretSize = 20
	totpIssuer     = "Gatehouse"
)

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// TOTPEnrolment is an authenticator app being added: the secret as text (base32) and as the
// otpauth:// URI a QR code carries. It counts once a code confirms it (ConfirmTOTP).
type TOTPEnrolment struct {
	FactorID string
	Secret   string // base32, without padding, for typing in
	URI      string // otpauth://totp/… for the QR code
}

// BeginTOTP starts adding an authenticator app: it stores a new, unconfirmed secret (sealed) and
// returns what the enrolment page shows. It needs a recent password entry (RequireSecurityReauth).
func (s *Service) BeginTOTP(ctx context.Context, p *Principal) (*TOTPEnrolment, error) {
	if err := s.RequireSecurityReauth(p); err != nil {
		return nil, err
	}
	secret := make([]byte, totpSecretSize)
	if _, err := io.ReadFull(s.rand, secret); err != nil {
		return nil, err
	}
	id, err := s.newID()
	if err != nil {
		return nil, err
	}
	sealed, err := s.sealSecret(secret, id)
	if err != nil {
		return nil, err
	}
	f := &models.Factor{ID: id, UserID: p.UserID, Kind: models.FactorTOTP, Name: "Authenticator app", Secret: sealed, CreatedAt: s.clock()}
	if err := s.store.CreateFactor(ctx, f); err != nil {
		return nil, fmt.Errorf("store enrolment: %w", err)
	}
	return enrolmentOf(id, p.Email, secret), nil
}

// TOTPEnrolmentOf shows an enrolment again (after a wrong first code); ErrFactorAlreadyOn when
// it is confirmed already, ErrNotFound when it is not this user's or is too old.
func (s *Service) TOTPEnrolmentOf(ctx context.Context, p *Principal, factorID string) (*TOTPEnrolment, error) {
	f, err := s.pendingEnrolment(ctx, p.UserID, factorID)
	if err != nil {
		return nil, err
	}
	secret, err := s.openSecret(f.Secret, f.ID)
	if err != nil {
		return nil, err
	}
	return enrolmentOf(f.ID, p.Email, secret), nil
}

func (s *Service) pendingEnrolment(ctx context.Context, userID, factorID string) (*models.Factor, error) {
	if !wellFormedID(factorID) {
		return nil, ErrNotFound
	}
	f, err := s.store.FactorOf(ctx, userID, factorID)
	if errors.Is(err, models.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("find enrolment: %w", err)
	}
	if f.Kind != models.FactorTOTP {
		return nil, ErrNotFound
	}
	if f.ConfirmedAt != nil {
		return nil, ErrFactorAlreadyOn
	}
	if s.clock().Sub(f.CreatedAt) > enrolmentTTL {
		return nil, ErrNotFound
	}
	return f, nil
}

func enrolmentOf(id, email string, secret []byte) *TOTPEnrolment {
	text := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret)
	v := url.Values{}
	v.Set("secret", text)
	v.Set("issuer", totpIssuer)
	v.Set("algorithm", "SHA1")
	v.Set("digits", "6")
	v.Set("period", "30")
	label := url.PathEscape(totpIssuer + ":" + email)
	return &TOTPEnrolment{FactorID: id, Secret: text, URI: "otpauth://totp/" + label + "?" + v.Encode()}
}

// ConfirmTOTP makes an enrolment count once the person types a code from the app. When it is the
// account's first second factor, it returns a new set of recovery codes, to be shown once.
func (s *Service) ConfirmTOTP(ctx context.Context, p *Principal, factorID, name, code, ip string) ([]string, error) {
	name, err := factorName(name, "Authenticator app")
	if err != nil {
		return nil, err
	}
	f, err := s.pendingEnrolment(ctx, p.UserID, factorID)
	if err != nil {
		return nil, err
	}
	secret, err := s.openSecret(f.Secret, f.ID)
	if err != nil {
		return nil, err
	}
	now := s.clock()
	step, ok := matchTOTP(secret, normalizeCode(code), now)
	if !ok {
		return nil, &ValidationError{Field: "code", Message: "That code is not right. Type the 6 digits the app shows now; if it still fails, check the time on your phone.", Cause: ErrInvalidCode}
	}
	var codes []string
	err = s.store.InTx(ctx, func(tx *models.Store) error {
		if _, err := tx.LockUser(ctx, p.UserID); err != nil {
			return fmt.Errorf("lock user: %w", err)
		}
		if err := tx.ConfirmFactor(ctx, p.UserID, f.ID, name, step, now); errors.Is(err, models.ErrNotFound) {
			// Removed, or confirmed by a submit that ran beside this one (it held the user's
			// lock first, so its commit is visible now).
			again, ferr := tx.FactorOf(ctx, p.UserID, f.ID)
			switch {
			case errors.Is(ferr, models.ErrNotFound):
				return ErrNotFound
			case ferr != nil:
				return fmt.Errorf("read factor again: %w", ferr)
			case again.ConfirmedAt != nil:
				return ErrFactorAlreadyOn
			}
			return ErrNotFound
		} else if err != nil {
			return fmt.Errorf("confirm factor: %w", err)
		}
		codes, err = s.factorAdded(ctx, tx, p, models.EventTOTPAdded, name, ip)
		return err
	})
	if err == nil {
		s.mailSent()
	}
	return codes, err
}

// factorAdded records a new factor inside tx, which holds the user's lock. The account's first
// factor comes with a set of recovery codes (returned, to be shown once).
func (s *Service) factorAdded(ctx context.Context, tx *models.Store, p *Principal, kind, name, ip string) ([]string, error) {
	now := s.clock()
	if err := tx.RecordEvent(ctx, &models.SecurityEvent{UserID: p.UserID, SessionID: p.SessionID, Kind: kind, IP: ip, Detail: name, CreatedAt: now}); err != nil {
		return nil, fmt.Errorf("record new factor: %w", err)
	}
	what := "An authenticator app"
	if kind == models.EventPasskeyAdded {
		what = "A passkey"
	}
	if err := s.methodsChanged(ctx, tx, p.Email, fmt.Sprintf("%s (%q) was added.", what, name), ip); err != nil {
		return nil, err
	}
	factors, err := tx.Factors(ctx, p.UserID)
	if err != nil {
		return nil, fmt.Errorf("list factors: %w", err)
	}
	if len(factors) > 1 {
		return nil, nil
	}
	return s.newRecoveryCodes(ctx, tx, p, ip)
}

// methodsChanged tells the owner by mail that how the account signs in changed (ASVS 5.0 6.3.6),
// in the transaction that changed it.
func (s *Service) methodsChanged(ctx context.Context, tx *models.Store, email, change, ip string) error {
	return s.queueMail(ctx, tx, email, mailviews.SignInMethodsChanged{Email: email, Change: change, IP: ip, At: s.clock(),
		SecurityLink: s.link("/account/security", "")})
}

// newRecoveryCodes replaces the user's recovery codes inside tx and returns the new set.
func (s *Service) newRecoveryCodes(ctx context.Context, tx *models.Store, p *Principal, ip string) ([]string, error) {
	codes := make([]string, RecoveryCodeCount)
	hashes := make([][]byte, RecoveryCodeCount)
	for i := range codes {
		code, err := newRecoveryCode(s.rand)
		if err != nil {
			return nil, err
		}
		codes[i], hashes[i] = code, hashRecoveryCode(normalizeCode(code))
	}
	now := s.clock()
	if err := tx.ReplaceRecoveryCodes(ctx, p.UserID, hashes, now); err != nil {
		return nil, fmt.Errorf("store recovery codes: %w", err)
	}
	if err := tx.RecordEvent(ctx, &models.SecurityEvent{UserID: p.UserID, SessionID: p.SessionID, Kind: models.EventRecoveryCodesMade, IP: ip, CreatedAt: now}); err != nil {
		return nil, fmt.Errorf("record recovery codes: %w", err)
	}
	return codes, nil
}

// RegenerateRecoveryCodes voids the user's recovery codes and returns a new set, to be shown once.
// It needs a recent password entry and a second factor (a ValidationError otherwise).
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, p *Principal, ip string) ([]string, error) {
	if err := s.RequireSecurityReauth(p); err != nil {
		return nil, err
	}
	var codes []string
	err := s.store.InTx(ctx, func(tx *models.Store) error {
		if _, err := tx.LockUser(ctx, p.UserID); err != nil {
			return fmt.Errorf("lock user: %w", err)
		}
		factors, err := tx.Factors(ctx, p.UserID)
		if err != nil {
			return fmt.Errorf("list factors: %w", err)
		}
		if len(factors) == 0 {
			return invalid("recovery_codes", "Recovery codes come with a second factor: add an authenticator app or a passkey first.")
		}
		if codes, err = s.newRecoveryCodes(ctx, tx, p, ip); err != nil {
			return err
		}
		return s.methodsChanged(ctx, tx, p.Email, "New recovery codes were made; the old ones no longer work.", ip)
	})
	if err == nil {
		s.mailSent()
	}
	return codes, err
}

// RemoveFactor removes one of the user's factors; with the last one go the recovery codes, and
// the password alone signs in again. It needs a recent password entry. It tells whether the
// account has a second factor left.
func (s *Service) RemoveFactor(ctx context.Context, p *Principal, factorID, ip string) (bool, error) {
	if err := s.RequireSecurityReauth(p); err != nil {
		return false, err
	}
	if !wellFormedID(factorID) {
		return false, ErrNotFound
	}
	left := false
	err := s.store.InTx(ctx, func(tx *models.Store) error {
		if _, err := tx.LockUser(ctx, p.UserID); err != nil {
			return fmt.Errorf("lock user: %w", err)
		}
		f, err := tx.FactorOf(ctx, p.UserID, factorID)
		if errors.Is(err, models.ErrNotFound) || err == nil && f.ConfirmedAt == nil {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("find factor: %w", err)
		}
		if err := tx.DeleteFactor(ctx, p.UserID, factorID); err != nil {
			return fmt.Errorf("remove factor: %w", err)
		}
		rest, err := tx.Factors(ctx, p.UserID)
		if err != nil {
			return fmt.Errorf("list factors: %w", err)
		}
		left = len(rest) > 0
		if !left {
			if err := tx.DeleteRecoveryCodes(ctx, p.UserID); err != nil {
				return fmt.Errorf("remove recovery codes: %w", err)
			}
		}
		change := fmt.Sprintf("%q was removed.", f.Name)
		if !left {
			change += " It was the last second factor: your password alone signs you in now, and your recovery codes no longer work."
		}
		if err := s.methodsChanged(ctx, tx, p.Email, change, ip); err != nil {
			return err
		}
		return tx.RecordEvent(ctx, &models.SecurityEvent{UserID: p.UserID, SessionID: p.SessionID, Kind: models.EventFactorRemoved, IP: ip, Detail: f.Name, CreatedAt: s.clock()})
	})
	if err == nil {
		s.mailSent()
	}
	return left, err
}

// RenameFactor renames one of the user's factors.
func (s *Service) RenameFactor(ctx context.Context, p *Principal, factorID, name string) error {
	name, err := factorName(name, "")
	if err != nil {
		return err
	}
	if !wellFormedID(factorID) {
		return ErrNotFound
	}
	err = s.store.RenameFactor(ctx, p.UserID, factorID, name)
	if errors.Is(err, models.ErrNotFound) {
		return ErrNotFound
	}
	return err
}

// ConfirmWithCode re-authenticates the user on this device with a TOTP or recovery code, where
// a second factor is enrolled, for sensitive actions (as ConfirmPassword does with the password).
// A wrong code is a ValidationError on "code" that wraps ErrWrongPassword, so that the handlers
// count it against the account's limit like a wrong password.
func (s *Service) ConfirmWithCode(ctx context.Context, p *Principal, code, ip string) error {
	err := s.store.InTx(ctx, func(tx *models.Store) error {
		user, err := tx.LockUser(ctx, p.UserID)
		if err != nil {
			return fmt.Errorf("lock user: %w", err)
		}
		checked, err := s.useCode(ctx, tx, p.UserID, code)
		if err != nil {
			return err
		}
		if checked.amr == AMRPasswordRecovery {
			this, err := tx.SessionByID(ctx, p.SessionID)
			if err != nil {
				return fmt.Errorf("read session: %w", err)
			}
			if err := s.recoveryCodeUsed(ctx, tx, user, Client{IP: ip, DeviceName: this.DeviceName}, checked.left); err != nil {
				return err
			}
		}
		return tx.MarkAuthenticated(ctx, p.SessionID, s.clock())
	})
	if errors.Is(err, ErrInvalidCode) {
		event := &models.SecurityEvent{UserID: p.UserID, SessionID: p.SessionID, Kind: models.EventSecondFactorFailed, IP: ip, CreatedAt: s.clock()}
		if rerr := s.store.RecordEvent(ctx, event); rerr != nil {
			return fmt.Errorf("record failed code: %w", rerr)
		}
		return &ValidationError{Field: "code", Message: "That code is not right.", Cause: ErrWrongPassword}
	}
	if err != nil {
		return err
	}
	s.mailSent()
	s.revoked(p.UserID, p.SessionID)
	return nil
}

// ResetSecondFactors removes every factor and recovery code of the account with this address
// (an operator's answer to a lost phone and lost codes) and records it. It returns how many
// factors it removed.
func (s *Service) ResetSecondFactors(ctx context.Context, rawEmail string) (int, error) {
	email, err := NormalizeEmail(rawEmail)
	if err != nil {
		return 0, err
	}
	var removed int64
	err = s.store.InTx(ctx, func(tx *models.Store) error {
		user, err := tx.UserByEmail(ctx, email)
		if errors.Is(err, models.ErrNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("find user: %w", err)
		}
		if _, err := tx.LockUser(ctx, user.ID); err != nil {
			return fmt.Errorf("lock user: %w", err)
		}
		if removed, err = tx.DeleteFactors(ctx, user.ID); err != nil {
			return fmt.Errorf("remove factors: %w", err)
		}
		if err := tx.DeleteChallenges(ctx, user.ID); err != nil {
			return fmt.Errorf("remove challenges: %w", err)
		}
		if err := s.methodsChanged(ctx, tx, user.Email, "An administrator removed every second factor and passkey of the account: your password alone signs you in now.", ""); err != nil {
			return err
		}
		return tx.RecordEvent(ctx, &models.SecurityEvent{UserID: user.ID, Kind: models.EventFactorsReset, CreatedAt: s.clock()})
	})
	if err == nil {
		s.mailSent()
	}
	return int(removed), err
}

// matchTOTP finds the time step, within totpSkew of now, whose code is code.
func matchTOTP(secret []byte, code string, now time.Time) (int64, bool) {
	if !isTOTPCode(code) {
		return 0, false
	}
	text := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret)
	current := now.Unix() / totpPeriod
	for step := current - totpSkew; step <= current+totpSkew; step++ {
		want, err := totp.GenerateCodeCustom(text, time.Unix(step*totpPeriod, 0), totpOpts)
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return step, true
		}
	}
	return 0, false
}

func isTOTPCode(code string) bool {
	if len(code) != 6 {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

// Recovery codes are 25 characters of a 32-letter alphabet without i, l, o and 1: 125 bits, so
// that a plain SHA-256 stores them safely (ASVS 5.0 6.5.2 asks a slow, salted hash only below 112
// bits), shown as five groups of five: "k7mq2-xpd4a-…".
const (
	recoveryAlphabet  = "abcdefghjkmnpqrstuvwxyz023456789"
	recoveryCodeLen   = 25
	recoveryGroupSize = 5
)

func newRecoveryCode(rand io.Reader) (string, error) {
	raw := make([]byte, recoveryCodeLen)
	if _, err := io.ReadFull(rand, raw); err != nil {
		return "", err
	}
	var b strings.Builder
	for i, r := range raw {
		if i > 0 && i%recoveryGroupSize == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(recoveryAlphabet[r%32]) // 256 is a multiple of 32: every letter equally likely
	}
	return b.String(), nil
}

func isRecoveryCode(code string) bool {
	if len(code) != recoveryCodeLen {
		return false
	}
	return strings.Trim(code, recoveryAlphabet) == ""
}

// factorName checks a factor's name: 1 to 64 characters; empty takes fallback when there is one.
func factorName(name, fallback string) (string, error) {
	if strings.TrimSpace(name) == "" && fallback != "" {
		return fallback, nil
	}
	return ValidateDeviceName("name", name)
}

// TOTPCode computes the code of secret (base32, as TOTPEnrolment.Secret) at t: what an
// authenticator app shows. Tests and the harness use it to act as the person's phone.
func TOTPCode(secret string, t time.Time) (string, error) {
	return totp.GenerateCodeCustom(secret, t, totpOpts)
}
