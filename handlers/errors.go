package handlers

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"gatehouse/services/auth"
)

// APIError is an HTTP error with the contract's code and a message for people. Cause is kept
// for the log only and never sent.
type APIError struct {
	Status     int
	Code       string
	Message    string
	Field      string // the form field a page shows the message next to
	RetryAfter int    // seconds, for 429 and 503
	Cause      error
}

func (e *APIError) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%d %s: %v", e.Status, e.Code, e.Cause)
	}
	return fmt.Sprintf("%d %s", e.Status, e.Code)
}

func (e *APIError) Unwrap() error { return e.Cause }

func apiError(status int, code, message string) *APIError {
	return &APIError{Status: status, Code: code, Message: message}
}

// Errors the handlers answer with.
var (
	errBadJSON       = apiError(fiber.StatusBadRequest, "invalid_request", "The request body is not valid JSON of the expected shape.")
	errUnauthorized  = apiError(fiber.StatusUnauthorized, "invalid_token", "Sign in again: the access token is missing or invalid.")
	errForbiddenCSRF = apiError(fiber.StatusForbidden, "forbidden", "This form has expired or did not come from this site. Go back, reload the page and try again.")
	errPlainHTTP     = apiError(fiber.StatusForbidden, "forbidden", "This portal is set up on plain http at an address other than localhost, so your browser refuses its secure cookies and no form can work. Open it over https, or, for development, at http://localhost or http://127.0.0.1 (GATEHOUSE_BASE_URL).")
	errOrigin        = apiError(fiber.StatusForbidden, "forbidden", "Requests from this origin are not allowed.")
	errNotFound      = apiError(fiber.StatusNotFound, "not_found", "Nothing here by that name.")
	errTooLarge      = apiError(fiber.StatusRequestEntityTooLarge, "payload_too_large", "The request body is too large.")
	errEncodedBody   = apiError(fiber.StatusUnsupportedMediaType, "unsupported_encoding", "Send the request body uncompressed (no Content-Encoding).")
)

// classify turns any error into an APIError: domain sentinels into their codes, everything
// unknown into a 500 whose cause is logged, never shown.
func classify(err error) *APIError {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr
	}
	var validation *auth.ValidationError
	if errors.As(err, &validation) {
		return &APIError{Status: fiber.StatusBadRequest, Code: "invalid_request", Message: validation.Message, Field: validation.Field, Cause: err}
	}
	var fiberErr *fiber.Error
	if errors.As(err, &fiberErr) {
		switch fiberErr.Code {
		case fiber.StatusRequestEntityTooLarge:
			return errTooLarge
		case fiber.StatusNotFound:
			return errNotFound
		case fiber.StatusMethodNotAllowed:
			return apiError(fiberErr.Code, "method_not_allowed", "This route does not take that method.")
		}
		if fiberErr.Code < 500 {
			return &APIError{Status: fiberErr.Code, Code: "invalid_request", Message: "The request could not be understood.", Cause: err}
		}
	}
	switch {
	case errors.Is(err, auth.ErrInvalidCredentials):
		return apiError(fiber.StatusUnauthorized, "invalid_credentials", "The email or password is not right.")
	case errors.Is(err, auth.ErrInvalidToken):
		return apiError(fiber.StatusUnauthorized, "invalid_token", "The token is not valid. Sign in again.")
	case errors.Is(err, auth.ErrTokenExpired):
		return apiError(fiber.StatusUnauthorized, "token_expired", "The session has expired. Sign in again.")
	case errors.Is(err, auth.ErrTokenReused):
		return apiError(fiber.StatusUnauthorized, "token_reused", "This refresh token was already used, so the device was signed out to be safe. Sign in again.")
	case errors.Is(err, auth.ErrSessionRevoked):
		return apiError(fiber.StatusUnauthorized, "session_revoked", "This device was signed out. Sign in again.")
	case errors.Is(err, auth.ErrNotFound):
		return errNotFound
	case errors.Is(err, auth.ErrEmailTaken):
		return &APIError{Status: fiber.StatusConflict, Code: "email_taken", Message: "An account with this email already exists. Sign in instead.", Field: "email"}
	case errors.Is(err, auth.ErrEmailNotVerified):
		return apiError(fiber.StatusForbidden, "email_not_verified", "Verify your email address first: we have sent a new link to it. Use the newest email.")
	case errors.Is(err, auth.ErrInvalidCode):
		return apiError(fiber.StatusUnauthorized, "invalid_code", "That code is not right. Try the newest code your app shows, or a recovery code.")
	case errors.Is(err, auth.ErrPasskeyRefused):
		return apiError(fiber.StatusUnauthorized, "invalid_credential", "That passkey did not confirm it's you.")
	case errors.Is(err, auth.ErrReauthRequired):
		return apiError(fiber.StatusForbidden, "reauthentication_required", "Confirm your password to do this.")
	case errors.Is(err, auth.ErrBusy):
		return &APIError{Status: fiber.StatusServiceUnavailable, Code: "unavailable", Message: "Too many sign-ins right now. Try again in a moment.", RetryAfter: 2, Cause: err}
	case errors.Is(err, auth.ErrUnavailable):
		return &APIError{Status: fiber.StatusServiceUnavailable, Code: "unavailable", Message: "The service is briefly unavailable. Try again in a moment.", RetryAfter: 2, Cause: err}
	}
	return &APIError{Status: fiber.StatusInternalServerError, Code: "internal_error", Message: "Something went wrong on our side. Try again.", Cause: err}
}

// errorHandler is the one place errors become responses: JSON under /auth/ and /api/, the error
// page elsewhere.
func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	e := classify(err)
	switch {
	case e.Status == fiber.StatusServiceUnavailable: // expected while the database is away
		s.log.Warn("request failed", "request_id", requestID(c), "method", c.Method(), "path", c.Path(), "status", e.Status, "error", e.Cause)
	case e.Status >= 500:
		s.log.Error("request failed", "request_id", requestID(c), "method", c.Method(), "path", c.Path(), "status", e.Status, "error", e.Cause)
	}
	if e.RetryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(e.RetryAfter))
	}
	if wantsJSON(c) {
		if strings.HasPrefix(c.Path(), "/auth/refresh") && e.Status == fiber.StatusUnauthorized {
			s.clearSessionCookies(c)
		}
		return c.Status(e.Status).JSON(fiber.Map{"error": e.Code, "message": e.Message})
	}
	return s.renderError(c, e)
}

func wantsJSON(c *fiber.Ctx) bool {
	p := c.Path()
	return strings.HasPrefix(p, "/auth/") || strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/.well-known/")
}
