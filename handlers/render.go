package handlers

import (
	"time"

	"github.com/a-h/templ"
	"github.com/gofiber/fiber/v2"

	"gatehouse/views/pages"
)

// render writes a templ component as the HTML response. The time it takes is added up in the
// request's locals, so that requestContext can count it for the route (how much of a page's time
// is templ's, beside the queries).
func render(c *fiber.Ctx, component templ.Component) error {
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	start := time.Now()
	err := component.Render(c.UserContext(), c.Response().BodyWriter())
	rendered, _ := c.Locals(localRenderTime).(time.Duration)
	c.Locals(localRenderTime, rendered+time.Since(start))
	return err
}

// frame fills what the layout needs: the title, the CSRF token, and who is signed in.
func (s *Server) frame(c *fiber.Ctx, title string) pages.Frame {
	f := pages.Frame{Title: title, CSRFToken: s.csrfFor(c), Flash: flashes[c.Query("done")], Path: c.Path()}
	if p := principal(c); p != nil {
		f.SignedInEmail = p.Email
	}
	return f
}

// flashes are the one-line notices after an action, chosen by a fixed key so that no text from
// the URL reaches the page.
var flashes = map[string]string{
	"renamed":               "Device renamed.",
	"signed-out":            "Device signed out.",
	"others":                "All other devices were signed out.",
	"password":              "Password changed. Every other device was signed out.",
	"password-reset":        "Your new password is set. Every other device was signed out.",
	"email-sent":            "We sent a link to the new address. Your address changes when you open it.",
	"verify-sent":           "We sent a new verification link to your address.",
	"notices":               "Your sign-in notice setting is saved.",
	"name":                  "Your display name is saved.",
	"deleted":               "Your account was deleted, and every device signed out of it.",
	"totp-added":            "Authenticator app added. We ask for its code after your password.",
	"passkey-added":         "Passkey added.",
	"factor-renamed":        "Renamed.",
	"factor-removed":        "Removed.",
	"factor-removed-last":   "Removed. Your password alone signs you in now, and your recovery codes no longer work.",
	"totp-already-on":       "Your authenticator app is already on.",
	"totp-already-on-codes": "Your authenticator app is already on. If you did not see your recovery codes, make new ones below: the set you missed stops working.",
	"enrolment-expired":     "That setup took too long or was finished already. Start again.",
	"second-step-expired":   "That sign-in expired or was already used. Sign in again.",
	"session-expired":       "Your session on this device expired. Sign in again.",
	"signed-out-elsewhere":  "This device was signed out: from another device, by signing out everywhere, or by a password change. Sign in again.",
	"session-reused":        "This device was signed out to keep your account safe: its sign-in was used again from somewhere else. Sign in again, and check your security activity.",
}
