package auth

// The checks of outside input that reaches the domain: emails, names, user agents. Each refuses
// what it cannot store or show faithfully before any query sees it.

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// NormalizeEmail trims and lower-cases an email and checks that it is one.
func NormalizeEmail(raw string) (string, error) {
	if len(raw) > 1024 || !utf8.ValidString(raw) {
		return "", invalid("email", "Enter a valid email address, like name@example.com.")
	}
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

// ValidateDeviceName checks a device name: 1 to 64 characters, no control or format characters.
func ValidateDeviceName(field, name string) (string, error) {
	if len(name) > 1024 || !utf8.ValidString(name) {
		return "", invalid(field, "Use 1 to 64 characters.")
	}
	name = strings.TrimSpace(name)
	if n := utf8.RuneCountInString(name); n == 0 || n > 64 {
		return "", invalid(field, "Use 1 to 64 characters.")
	}
	if hasControl(name) {
		return "", invalid(field, "Use 1 to 64 characters without control or text-direction characters.")
	}
	return name, nil
}

// validateDisplayName checks an optional display name: at most 64 characters, no control or
// format characters.
func validateDisplayName(name string) (string, error) {
	if len(name) > 1024 || !utf8.ValidString(name) {
		return "", invalid("display_name", "Use at most 64 characters.")
	}
	name = strings.TrimSpace(name)
	if utf8.RuneCountInString(name) > 64 {
		return "", invalid("display_name", "Use at most 64 characters.")
	}
	if hasControl(name) {
		return "", invalid("display_name", "Remove the control and text-direction characters.")
	}
	return name, nil
}

// validateNewPassword checks a password being chosen: that there is one, and that it keeps the
// length rules (validatePassword).
func validateNewPassword(field, password string) error {
	if password == "" {
		return invalid(field, fmt.Sprintf("Choose a password of at least %d characters.", MinPasswordLength))
	}
	return validatePassword(field, password)
}

// validateConfirmation checks the new password typed a second time: that it was, and the same.
func validateConfirmation(field, password, confirm string) error {
	switch {
	case confirm == "":
		return invalid(field, "Type the password again.")
	case confirm != password:
		return invalid(field, "The passwords do not match.")
	}
	return nil
}

// validatePasswordChoice checks a new password and its confirmation together, so that a form
// shows both problems at once.
func validatePasswordChoice(field, password, confirmField, confirm string) error {
	var errs ValidationErrors
	errs.add(validateNewPassword(field, password))
	errs.add(validateConfirmation(confirmField, password, confirm))
	return errs.err()
}

// validatePasswordChange checks the change-password form as a whole before the current password
// is compared (which costs a hash and counts as an attempt): that the current password was given,
// and the new one with its confirmation (validatePasswordChoice).
func validatePasswordChange(current, next, confirm string) error {
	var errs ValidationErrors
	if current == "" {
		errs.add(invalid("current_password", "Enter your current password."))
	}
	errs.add(validatePasswordChoice("new_password", next, "new_password_confirm", confirm))
	return errs.err()
}

// cleanText makes outside text safe to store and show: valid UTF-8, no control characters
// (PostgreSQL refuses NUL), at most n bytes.
func cleanText(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || hasControl(string(r)) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// hasControl tells whether s holds control characters or invisible format characters
// (Unicode Cf: bidirectional overrides such as U+202E, which make a name read backwards, and
// zero-width marks). The zero-width joiner stays allowed: emoji sequences are made with it.
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsControl(r) || (unicode.Is(unicode.Cf, r) && r != '\u200d')
	})
}
