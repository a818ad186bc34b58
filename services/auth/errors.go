package auth

import (
	"errors"
	"fmt"
)

// Sentinel errors of the domain. Handlers map each to one status code and JSON error code.
var (
	ErrInvalidCredentials = errors.New("invalid email or password")
	ErrInvalidToken       = errors.New("invalid token")
	ErrTokenExpired       = errors.New("token expired")
	ErrTokenReused        = errors.New("refresh token reused")
	ErrSessionRevoked     = errors.New("session revoked")
	ErrNotFound           = errors.New("not found")
	ErrEmailTaken         = errors.New("email already registered")
	ErrBusy               = errors.New("too many password checks in progress")
	ErrReauthRequired     = errors.New("password confirmation required")
	// ErrWrongPassword is wrapped by the ValidationError of a wrong current password, so that the
	// handlers count it against the account's password limit like a failed sign-in.
	ErrWrongPassword = errors.New("wrong password")
)

// ValidationError is a client input that breaks a rule; Field names the form or JSON field.
type ValidationError struct {
	Field   string
	Message string
	Cause   error // a sentinel the caller may test for with errors.Is
}

func (e *ValidationError) Unwrap() error { return e.Cause }

func (e *ValidationError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Message) }

func invalid(field, message string) error { return &ValidationError{Field: field, Message: message} }

func wrongPassword(field, message string) error {
	return &ValidationError{Field: field, Message: message, Cause: ErrWrongPassword}
}
