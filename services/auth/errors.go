package auth

import (
	"errors"
	"fmt"
	"strings"

	"gatehouse/models"
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
	// ErrEmailNotVerified: the password was right, but GATEHOUSE_EMAIL_VERIFICATION=required and the
	// address is not verified yet; a new link was sent.
	ErrEmailNotVerified = errors.New("email address not verified")
	// ErrWrongPassword is wrapped by the ValidationError of a wrong current password, so that the
	// handlers count it against the account's password limit like a failed sign-in.
	ErrWrongPassword = errors.New("wrong password")
	// ErrFactorAlreadyOn: an authenticator app enrolment was confirmed already, as when its form
	// is submitted twice; the recovery codes of the first answer cannot be shown again.
	ErrFactorAlreadyOn = errors.New("that authenticator app is already on")
	// ErrUnavailable: the database cannot be reached or is overloaded; the caller may retry. It
	// is the store's own sentinel, so errors from any layer below match it.
	ErrUnavailable = models.ErrUnavailable
)

// SignedOut tells whether err means the credentials presented no longer sign anyone in (invalid,
// expired, reused or revoked), as opposed to a failure to check them (the database is away).
func SignedOut(err error) bool {
	return errors.Is(err, ErrInvalidToken) || errors.Is(err, ErrTokenExpired) ||
		errors.Is(err, ErrTokenReused) || errors.Is(err, ErrSessionRevoked)
}

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

// ValidationErrors are every problem of one form at once, in the order of its fields, so that a
// person sees and fixes them in one go. errors.As finds a *ValidationError in it (the first), so a
// caller that reports one error (the JSON API, the command line) still does.
type ValidationErrors []*ValidationError

func (e ValidationErrors) Error() string {
	parts := make([]string, len(e))
	for i, v := range e {
		parts[i] = v.Error()
	}
	return strings.Join(parts, "; ")
}

func (e ValidationErrors) Unwrap() []error {
	out := make([]error, len(e))
	for i, v := range e {
		out[i] = v
	}
	return out
}

// add keeps the field problems err holds (one ValidationError or many); any other error, or nil,
// is not a field's problem and adds nothing.
func (e *ValidationErrors) add(err error) {
	*e = append(*e, FieldErrors(err)...)
}

// err is nil when no field has a problem, else the list as an error.
func (e ValidationErrors) err() error {
	if len(e) == 0 {
		return nil
	}
	return e
}

// FieldErrors lists the field problems err holds, in the form's order: all of a ValidationErrors,
// the one of a ValidationError, none for any other error.
func FieldErrors(err error) ValidationErrors {
	var all ValidationErrors
	if errors.As(err, &all) {
		return all
	}
	var one *ValidationError
	if errors.As(err, &one) {
		return ValidationErrors{one}
	}
	return nil
}
