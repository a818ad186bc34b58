package auth

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
)

// PasswordParams are argon2id's cost settings.
type PasswordParams struct {
	MemoryKiB uint32
	Time      uint32
	Threads   uint8
}

// DefaultPasswordParams follow OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane).
var DefaultPasswordParams = PasswordParams{MemoryKiB: 19 * 1024, Time: 2, Threads: 1}

// Password length rules, counted in characters.
const (
	MinPasswordLength = 10
	MaxPasswordLength = 256
)

// Passwords hashes and checks passwords with argon2id. It bounds how many hashes run at once, so
// that a flood of sign-ins queues (and then fails with ErrBusy) instead of starving refreshes.
type Passwords struct {
	params  PasswordParams
	rand    io.Reader
	slots   chan struct{}
	maxWait time.Duration
	dummy   string // a real hash of a random password, checked for unknown emails
}

// NewPasswords prepares a hasher allowing concurrent hashes at once, each waiting at most maxWait for a slot.
func NewPasswords(params PasswordParams, rand io.Reader, concurrent int, maxWait time.Duration) (*Passwords, error) {
	if concurrent < 1 {
		concurrent = 1
	}
	p := &Passwords{params: params, rand: rand, slots: make(chan struct{}, concurrent), maxWait: maxWait}
	secret := make([]byte, 32)
	if _, err := io.ReadFull(rand, secret); err != nil {
		return nil, err
	}
	dummy, err := p.hash(base64.RawStdEncoding.EncodeToString(secret))
	if err != nil {
		return nil, err
	}
	p.dummy = dummy
	return p, nil
}

func (p *Passwords) acquire(ctx context.Context) (func(), error) {
	timer := time.NewTimer(p.maxWait)
	defer timer.Stop()
	select {
	case p.slots <- struct{}{}:
		return func() { <-p.slots }, nil
	case <-timer.C:
		return nil, ErrBusy
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Hash returns the PHC string of password.
func (p *Passwords) Hash(ctx context.Context, password string) (string, error) {
	release, err := p.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	return p.hash(password)
}

func (p *Passwords) hash(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := io.ReadFull(p.rand, salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, p.params.Time, p.params.MemoryKiB, p.params.Threads, 32)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.params.MemoryKiB, p.params.Time,
		p.params.Threads, base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// Check compares password with a stored hash in constant time. An empty hash (unknown user) is
// checked against the dummy hash, so that the time taken does not tell whether the email exists.
func (p *Passwords) Check(ctx context.Context, hash, password string) (bool, error) {
	release, err := p.acquire(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	if hash == "" {
		_, _ = verifyPHC(p.dummy, password)
		return false, nil
	}
	return verifyPHC(hash, password)
}

func verifyPHC(encoded, password string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errors.New("unsupported password hash")
	}
	var params PasswordParams
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &params.MemoryKiB, &params.Time, &params.Threads); err != nil {
		return false, fmt.Errorf("password hash parameters: %w", err)
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false, fmt.Errorf("password hash salt: %w", err)
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil {
		return false, fmt.Errorf("password hash key: %w", err)
	}
	got := argon2.IDKey([]byte(password), salt, params.Time, params.MemoryKiB, params.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// validatePassword enforces the length rules on a new password.
func validatePassword(field, password string) error {
	n := len([]rune(password))
	switch {
	case n < MinPasswordLength:
		return invalid(field, fmt.Sprintf("Use at least %d characters.", MinPasswordLength))
	case n > MaxPasswordLength:
		return invalid(field, fmt.Sprintf("Use at most %d characters.", MaxPasswordLength))
	}
	return nil
}
