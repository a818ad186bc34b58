// Package pages holds one templ component per page and the view-model struct each one takes.
package pages

import (
	"time"

	"gatehouse/views/layouts"
)

// Frame is what the layout needs on every page (title, who is signed in, CSRF token, notice).
type Frame = layouts.Frame

type LoginPage struct {
	Frame
	Email         string // kept after a failure; never the password
	Next          string // hidden field "next", passed through
	Error         string // one generic message, shown in role="alert"
	SignupEnabled bool   // show the "Create an account" link
}

type SignupPage struct {
	Frame
	Email, DisplayName string
	Errors             map[string]string // field name ("email", "password", "password_confirm", "display_name") → message
}

type DevicesPage struct {
	Frame
	Now     time.Time // for relative times ("5 minutes ago")
	Devices []DeviceRow
	Events  []EventRow
}

type DeviceRow struct {
	ID           string // the sid, used in the form actions /devices/{ID}/rename and /devices/{ID}/signout
	Name         string // the device's name (user-given, or a default like "Firefox on macOS")
	Browser, OS  string // from the user agent, e.g. "Firefox 121", "macOS"; may be empty
	IP           string
	SignedInAt   time.Time
	LastActiveAt time.Time
	Current      bool   // "This device"
	RenameValue  string // the value to show in the rename field (the name, or the rejected input)
	RenameError  string // error next to the rename field of this row
}

type EventRow struct {
	Text string // human text, e.g. "New sign-in", "Device signed out", "Password changed",
	// "Signed out everywhere", "Replayed refresh token detected: device signed out"
	DeviceName string // may be empty
	IP         string // may be empty
	At         time.Time
	Alarming   bool // a replay: shown with a warning style
}

type ConfirmSignoutEverywherePage struct{ Frame }

type AccountPage struct {
	Frame
	Email, DisplayName string
	Errors             map[string]string // "current_password", "new_password", "new_password_confirm" → message
}

type ErrorPage struct {
	Frame
	Status  int    // 403, 404, 429, 500, 503
	Heading string // e.g. "Page not found"
	Message string
}
