package auth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"gatehouse/models"
	mailviews "gatehouse/views/mail"
)

// The second step of a sign-in: after a correct password on an account with a second factor, the
// sign-in waits on a challenge that only a code (TOTP or recovery) or a passkey completes.
const (
	// ChallengeTTL is how long the second step of one sign-in stays open.
	ChallengeTTL = 5 * time.Minute
	// MaxChallengeAttempts is how many wrong codes one challenge takes before it is used up.
	MaxChallengeAttempts = 5
	// RecoveryCodeCount is how many recovery codes a set has.
	RecoveryCodeCount = 10
	// enrolmentTTL is how long an authenticator app may take to confirm its first code.
	enrolmentTTL = 30 * time.Minute

	challengePrefix = "ghc_"
)

// ErrInvalidCode: a code (TOTP or recovery) that is wrong, used already, or out of its window.
var ErrInvalidCode = errors.New("invalid code")

// ErrPasskeyRefused: a passkey's answer that does not verify (wrong origin, RP ID or challenge, a
// replayed signature counter, another user's credential, or garbage); nothing was changed.
var ErrPasskeyRefused = errors.New("passkey refused")

// SecondFactorRequired answers a correct password on an account with a second factor: the sign-in
// goes on at the second step with Challenge, until ExpiresAt.
type SecondFactorRequired struct {
	Challenge string
	ExpiresAt time.Time
}

func (e *SecondFactorRequired) Error() string { return "second factor required" }

// Factor is a second factor or passkey as its owner sees it.
type Factor struct {
	ID         string
	Kind       string // "totp" or "passkey"
	Name       string
	AddedAt    time.Time
	LastUsedAt *time.Time
}

// Security is what the security page shows: the person's factors and recovery codes left.
type Security struct {
	Factors           []Factor
	RecoveryCodesLeft int
}

// HasSecondFactor tells whether any factor guards the sign-in.
func (s *Security) HasSecondFactor() bool { return len(s.Factors) > 0 }

// PendingSignIn is a second step waiting for its code or passkey.
type PendingSignIn struct {
	UserID        string
	TOTP          bool // an authenticator app is enrolled
	Passkeys      bool // a passkey is registered
	RecoveryCodes int  // unused recovery codes
	ExpiresAt     time.Time
}

// SecurityOf lists a user's factors and how many recovery codes are left.
func (s *Service) SecurityOf(ctx context.Context, userID string) (*Security, error) {
	rows, err := s.store.Factors(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list factors: %w", err)
	}
	left, err := s.store.RecoveryCodesLeft(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("count recovery codes: %w", err)
	}
	sec := &Security{RecoveryCodesLeft: int(left)}
	for _, f := range rows {
		sec.Factors = append(sec.Factors, Factor{ID: f.ID, Kind: f.Kind, Name: f.Name, AddedAt: f.CreatedAt, LastUsedAt: f.LastUsedAt})
	}
	return sec, nil
}

// secondStep opens the second step of a sign-in whose password was right, for the user at
// token_version version; the error it returns is the *SecondFactorRequired to answer with.
func (s *Service) secondStep(ctx context.Context, st *models.Store, userID string, version int64, c Client) error {
	token, err := newChallengeToken(s.rand)
	if err != nil {
		return err
	}
	now := s.clock()
	ch := &models.AuthChallenge{IDHash: hashToken(token), Purpose: models.ChallengeSecondFactor, UserID: &userID,
		TokenVersion: version, DeviceName: c.DeviceName, CreatedAt: now, ExpiresAt: now.Add(ChallengeTTL)}
	if err := st.CreateChallenge(ctx, ch); err != nil {
		return fmt.Errorf("open the second step: %w", err)
	}
	return &SecondFactorRequired{Challenge: token, ExpiresAt: ch.ExpiresAt}
}

// needsSecondStep tells whether a user has a confirmed second factor.
func (s *Service) needsSecondStep(ctx context.Context, st *models.Store, userID string) (bool, error) {
	factors, err := st.Factors(ctx, userID)
	if err != nil {
		return false, fmt.Errorf("list factors: %w", err)
	}
	return len(factors) > 0, nil
}

// PendingSecondStep describes an open second step; ErrInvalidToken when the challenge is unknown,
// expired, used up, or its user changed password or was signed out everywhere since.
func (s *Service) PendingSecondStep(ctx context.Context, challenge string) (*PendingSignIn, error) {
	ch, user, err := s.openSecondStep(ctx, s.store, challenge)
	if err != nil {
		return nil, err
	}
	sec, err := s.SecurityOf(ctx, user.ID)
	if err != nil {
		return nil, err
	}
	p := &PendingSignIn{UserID: user.ID, RecoveryCodes: sec.RecoveryCodesLeft, ExpiresAt: ch.ExpiresAt}
	for _, f := range sec.Factors {
		p.TOTP = p.TOTP || f.Kind == models.FactorTOTP
		p.Passkeys = p.Passkeys || f.Kind == models.FactorPasskey
	}
	return p, nil
}

// openSecondStep finds an open second-step challenge and its user, as they are now.
func (s *Service) openSecondStep(ctx context.Context, st *models.Store, challenge string) (*models.AuthChallenge, *models.User, error) {
	if !wellFormedChallenge(challenge) {
		return nil, nil, ErrInvalidToken
	}
	ch, err := st.OpenChallenge(ctx, hashToken(challenge), models.ChallengeSecondFactor, MaxChallengeAttempts, s.clock())
	if errors.Is(err, models.ErrNotFound) || err == nil && ch.UserID == nil {
		return nil, nil, ErrInvalidToken
	}
	if err != nil {
		return nil, nil, fmt.Errorf("find challenge: %w", err)
	}
	user, err := st.UserByID(ctx, *ch.UserID)
	if errors.Is(err, models.ErrNotFound) {
		return nil, nil, ErrInvalidToken
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read user: %w", err)
	}
	if !challengeStillApplies(ch, user) {
		return nil, nil, ErrInvalidToken
	}
	return ch, user, nil
}

// challengeStillApplies: a password change, a reset or a sign-out-everywhere since the password
// was checked (token_version moved), or a disable, ends the sign-in it started.
func challengeStillApplies(ch *models.AuthChallenge, u *models.User) bool {
	return !u.Disabled() && u.TokenVersion == ch.TokenVersion
}

// CompleteSecondFactor finishes a sign-in's second step with a TOTP code or a recovery code and
// starts the device session. A wrong code is ErrInvalidCode and counts against the challenge,
// which refuses after MaxChallengeAttempts; a challenge that is not open is ErrInvalidToken.
func (s *Service) CompleteSecondFactor(ctx context.Context, challenge, code string, c Client) (*Issued, error) {
	if _, _, err := s.openSecondStep(ctx, s.store, challenge); err != nil {
		return nil, err
	}
	var checked codeCheck
	issued, err := s.finishSecondStep(ctx, challenge, c, func(tx *models.Store, user *models.User) (string, error) {
		var err error
		checked, err = s.useCode(ctx, tx, user.ID, code)
		if err != nil {
			return "", err
		}
		if checked.amr == AMRPasswordRecovery {
			return checked.amr, s.recoveryCodeUsed(ctx, tx, user, c, checked.left)
		}
		return checked.amr, nil
	})
	if errors.Is(err, ErrInvalidCode) {
		s.secondStepFailed(ctx, challenge, c.IP)
	}
	return issued, err
}

// finishSecondStep uses up a challenge and starts the session in one transaction, once check,
// given the transaction and the user, has accepted the second factor and said how (the amr).
// The challenge is used up under the user's lock, so two answers to one challenge start one
// session; a check that refuses leaves the challenge and everything else as they were.
func (s *Service) finishSecondStep(ctx context.Context, challenge string, c Client, check func(tx *models.Store, user *models.User) (string, error)) (*Issued, error) {
	var (
		started  *newSession
		ended    []string
		user     *models.User
		verified bool
	)
	err := s.store.InTx(ctx, func(tx *models.Store) error {
		ch, u, err := s.openSecondStep(ctx, tx, challenge)
		if err != nil {
			return err
		}
		if user, err = tx.LockUser(ctx, u.ID); err != nil {
			return fmt.Errorf("lock user: %w", err)
		}
		if !challengeStillApplies(ch, user) {
			return ErrInvalidToken
		}
		amr, err := check(tx, user)
		if err != nil {
			return err
		}
		if err := tx.UseChallenge(ctx, ch.IDHash, MaxChallengeAttempts, s.clock()); errors.Is(err, models.ErrNotFound) {
			return ErrInvalidToken
		} else if err != nil {
			return fmt.Errorf("use challenge: %w", err)
		}
		if c.DeviceName == "" {
			c.DeviceName = ch.DeviceName
		}
		verified = user.EmailVerified()
		started, ended, err = s.startSessionInTx(ctx, tx, user, c, amr)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.revoked(user.ID, ended...)
	s.mailSent()
	s.loginOutcome("ok")
	return s.issueStarted(user.ID, user.TokenVersion, verified, started)
}

// secondStepFailed counts a wrong answer against its challenge and records it for the owner.
func (s *Service) secondStepFailed(ctx context.Context, challenge, ip string) {
	ctx = context.WithoutCancel(ctx)
	ch, user, err := s.openSecondStep(ctx, s.store, challenge)
	if err != nil {
		return
	}
	if _, err := s.store.FailChallenge(ctx, ch.IDHash); err != nil {
		s.log.Warn("could not count a wrong second-step code", "error", err)
	}
	err = s.store.RecordEvent(ctx, &models.SecurityEvent{UserID: user.ID, Kind: models.EventSecondFactorFailed, IP: ip, CreatedAt: s.clock()})
	if err != nil {
		s.log.Warn("could not record a wrong second-step code", "error", err)
	}
}

// recoveryCodeUsed records the use of a recovery code and tells the owner by mail.
func (s *Service) recoveryCodeUsed(ctx context.Context, tx *models.Store, user *models.User, c Client, left int) error {
	now := s.clock()
	device := c.DeviceName
	if device == "" {
		device = DefaultDeviceName(c.UserAgent)
	}
	if err := tx.RecordEvent(ctx, &models.SecurityEvent{UserID: user.ID, DeviceName: device, Kind: models.EventRecoveryCodeUsed, IP: c.IP, CreatedAt: now}); err != nil {
		return fmt.Errorf("record recovery code use: %w", err)
	}
	return s.queueMail(ctx, tx, user.Email, mailviews.RecoveryCodeUsed{Email: user.Email, Device: device, IP: c.IP, At: now,
		Remaining: left, SecurityLink: s.link("/account/security", "")})
}

// codeCheck is an accepted code: how it signs in (amr) and, for a recovery code, how many are left.
type codeCheck struct {
	amr  string
	left int
}

// useCode accepts a TOTP code of one of the user's authenticator apps or one of their recovery
// codes, and uses it up in tx: a TOTP time step is accepted once, a recovery code once.
func (s *Service) useCode(ctx context.Context, tx *models.Store, userID, raw string) (codeCheck, error) {
	code := normalizeCode(raw)
	now := s.clock()
	switch {
	case isTOTPCode(code):
		factors, err := tx.Factors(ctx, userID)
		if err != nil {
			return codeCheck{}, fmt.Errorf("list factors: %w", err)
		}
		for _, f := range factors {
			if f.Kind != models.FactorTOTP {
				continue
			}
			secret, err := s.openSecret(f.Secret, f.ID)
			if err != nil {
				return codeCheck{}, err
			}
			step, ok := matchTOTP(secret, code, now)
			if !ok {
				continue
			}
			fresh, err := tx.UseTOTPStep(ctx, f.ID, step, now)
			if err != nil {
				return codeCheck{}, fmt.Errorf("use time step: %w", err)
			}
			if fresh {
				return codeCheck{amr: AMRPasswordOTP}, nil
			}
		}
	case isRecoveryCode(code):
		used, err := tx.UseRecoveryCode(ctx, userID, hashRecoveryCode(code), now)
		if err != nil {
			return codeCheck{}, fmt.Errorf("use recovery code: %w", err)
		}
		if used {
			left, err := tx.RecoveryCodesLeft(ctx, userID)
			if err != nil {
				return codeCheck{}, fmt.Errorf("count recovery codes: %w", err)
			}
			return codeCheck{amr: AMRPasswordRecovery, left: int(left)}, nil
		}
	}
	return codeCheck{}, ErrInvalidCode
}

func newChallengeToken(rand io.Reader) (string, error) {
	secret := make([]byte, 32)
	if _, err := io.ReadFull(rand, secret); err != nil {
		return "", err
	}
	return challengePrefix + base64.RawURLEncoding.EncodeToString(secret), nil
}

// wellFormedChallenge rejects anything that could not have been issued, before any database work.
func wellFormedChallenge(token string) bool {
	if len(token) != len(challengePrefix)+43 || !strings.HasPrefix(token, challengePrefix) {
		return false
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token[len(challengePrefix):])
	return err == nil && len(raw) == 32
}

// sealSecret encrypts a TOTP secret with AES-256-GCM under a key derived from the server secret,
// bound to its factor id, so that a database dump alone does not yield it.
func (s *Service) sealSecret(secret []byte, factorID string) ([]byte, error) {
	aead, err := s.secretAEAD()
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := io.ReadFull(s.rand, nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, secret, []byte(factorID)), nil
}

// openSecret decrypts what sealSecret sealed for the same factor.
func (s *Service) openSecret(sealed []byte, factorID string) ([]byte, error) {
	aead, err := s.secretAEAD()
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize() {
		return nil, fmt.Errorf("factor %s: sealed secret too short", factorID)
	}
	secret, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(factorID))
	if err != nil {
		return nil, fmt.Errorf("factor %s: open secret (was the server secret replaced?): %w", factorID, err)
	}
	return secret, nil
}

func (s *Service) secretAEAD() (cipher.AEAD, error) {
	block, err := aes.NewCipher(s.keys.derive("totp-secret-v1"))
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// hashRecoveryCode is how a recovery code is stored: SHA-256 of its normalised form. The codes
// are random with 125 bits of entropy, so a slow hash would add nothing.
func hashRecoveryCode(code string) []byte {
	sum := sha256.Sum256([]byte("recovery:" + code))
	return sum[:]
}

// normalizeCode drops the spaces and dashes people type or copy, and lowers the case.
func normalizeCode(raw string) string {
	if len(raw) > 64 {
		return ""
	}
	return strings.ToLower(strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '\t' {
			return -1
		}
		return r
	}, raw))
}
