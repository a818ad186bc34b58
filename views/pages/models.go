// Package pages holds one templ component per page and the view-model struct each one takes.
// Handlers fill the structs; views never query.
package pages

import (
	"time"

	"gatehouse/views/components"
	"gatehouse/views/layouts"
)

// Frame is what the layout needs on every page: the title, who is signed in, the CSRF token and
// the flash notice. It is layouts.Frame, so the layout can take it without importing pages.
type Frame = layouts.Frame

// LoginPage is the sign-in form, empty or after a failed attempt.
type LoginPage struct {
	Frame
	Email         string // kept after a failure; never the password
	Next          string // hidden field "next", passed through
	Error         string // one generic message, shown in role="alert"
	OfferReset    bool   // too many attempts: the alert offers a password reset by email
	SignupEnabled bool   // show the "Create an account" link
}

// SignupPage is the create-account form, empty or with its field errors.
type SignupPage struct {
	Frame
	Email, DisplayName string
	Errors             map[string]string // field name ("email", "password", "password_confirm", "display_name") → message
}

// DevicesPage is "Your devices": every signed-in device and recent security activity.
type DevicesPage struct {
	Frame
	Now     time.Time // for relative times ("5 minutes ago")
	Devices []DeviceRow
	Events  []EventRow
}

// DeviceRow is one signed-in device: ID, Name, Kind (phone, tablet, computer, app), Browser, OS,
// IP and its Location, SignedInAt, LastActiveAt, SignedInWith, Current, RenameValue and
// RenameError. It is components.DeviceRow, so the row component can take it without importing
// pages.
type DeviceRow = components.DeviceRow

// EventRow is one line of the security activity, in plain language: what happened and, where it
// matters, what to do about it.
type EventRow struct {
	Text string // what happened, naming the device where there is one, e.g. "Someone may have a
	// copy of your sign-in on Rae's phone; we signed that device out."
	Advice         string // what to do, e.g. "If this wasn't you, change your password."; may be empty
	AdviceLink     string // a local path that does it, e.g. /account; may be empty
	AdviceLinkText string // the link's text, e.g. "Change your password"
	IP             string // may be empty
	At             time.Time
	Alarming       bool // may mean someone else has the account: shown with a warning style
}

// ConfirmSignoutEverywherePage asks before signing out every device, this one included.
type ConfirmSignoutEverywherePage struct{ Frame }

// AccountPage shows who is signed in and the account's forms, each with its field errors.
type AccountPage struct {
	Frame
	Email, DisplayName string
	AskToVerify        bool   // the address is not verified and verification is on: offer a new link
	SignInNotices      bool   // new-device sign-in notices are on
	NewEmail           string // kept after a refused email change
	NewDisplayName     string // kept after a refused display-name change (shown with its error)
	// "display_name" (display-name change), "current_password", "new_password",
	// "new_password_confirm" (password change), "new_email", "email_current_password" (email
	// change) and "delete_current_password" (account deletion) → message
	Errors map[string]string
}

// ErrorPage is an error in the site's frame.
type ErrorPage struct {
	Frame
	Status  int    // 403, 404, 429, 500, 503
	Heading string // e.g. "Page not found"
	Message string
}

// ConfirmPasswordPage asks for the password again before a sensitive action (re-authentication):
// its form posts back to Action with the field "password".
type ConfirmPasswordPage struct {
	Frame
	Action  string // the route of the action being confirmed, e.g. /devices/signout-others
	Purpose string // what the password unlocks, e.g. "sign out all other devices"
	Error   string // next to the password field
	// Codes: a second factor is enrolled, so a code from the authenticator app (or a recovery
	// code) in the field "code" confirms too; CodeError is shown next to it.
	Codes     bool
	CodeError string
	Passkeys  bool   // a passkey is registered: "Use a passkey instead" (components.PasskeyReauth)
	Cancel    string // where "Cancel" goes back to; "" is /devices
}

func (p ConfirmPasswordPage) cancel() string {
	if p.Cancel == "" {
		return "/devices"
	}
	return p.Cancel
}

// ForgotPasswordPage asks for an address; Sent shows the answer every address gets.
type ForgotPasswordPage struct {
	Frame
	Email    string
	Sent     bool
	ValidFor string            // how long a reset link works, e.g. "30 minutes"
	Errors   map[string]string // "email" → message (a malformed address only)
}

// ResetPasswordPage is the form a reset link opens, or why the link does not work.
type ResetPasswordPage struct {
	Frame
	Token   string // the link's token, posted back with the form
	Usable  bool
	Problem string            // when not usable: used, expired, superseded or unknown, in words
	Errors  map[string]string // "new_password", "new_password_confirm" → message
}

// LinkActionPage is the one-button page of a verification, email-change or undo link.
type LinkActionPage struct {
	Frame
	Token   string
	Action  string // where the button posts, e.g. /verify-email
	Heading string // e.g. "Verify your email address"
	Explain string
	Button  string
	Danger  bool // the undo of an email change signs everyone out: shown as a drastic action
	Usable  bool
	Problem string // when not usable
	Done    string // after the POST: what happened
	Next    string // after the POST: where to go on
}
