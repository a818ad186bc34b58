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
)

// ValidationError is a client input that breaks a rule; Field names the form or JSON field.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Message) }

func invalid(field, message string) error { return &ValidationError{Field: field, Message: message} }
