package handlers

import (
	"errors"

	"github.com/gofiber/fiber/v2"

	"gatehouse/services/auth"
	"gatehouse/views/pages"
)

// reauthenticated runs a sensitive page action (ASVS 7.5.2). When the service answers that the
// password was entered too long ago on this device, it shows a password prompt that posts back to
// the same route; with the password in the form it confirms it first, then runs the action.
func (s *Server) reauthenticated(c *fiber.Ctx, purpose string, action func() error) error {
	p := principal(c)
	page := pages.ConfirmPasswordPage{Frame: s.frame(c, "Confirm your password"), Action: c.Path(), Purpose: purpose}
	if password := formValue(c, "password"); password != "" {
		err := s.checkPassword(c, p.Email, func() error { return s.auth.ConfirmPassword(ctxOf(c), p, password, s.ip(c)) })
		var invalid *auth.ValidationError
		if errors.As(err, &invalid) {
			page.Error = invalid.Message
			c.Status(fiber.StatusBadRequest)
			return render(c, pages.ConfirmPassword(page))
		}
		if err != nil {
			return err
		}
		p.AuthenticatedAt = s.now()
	}
	err := action()
	if errors.Is(err, auth.ErrReauthRequired) {
		c.Status(fiber.StatusForbidden)
		return render(c, pages.ConfirmPassword(page))
	}
	return err
}
