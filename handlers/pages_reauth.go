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
	if password := c.FormValue("password"); password != "" {
		account := accountLimitKey(p.Email)
		if err := s.limit(c, s.limiter.Peek, account, s.cfg.LoginLimitAccount); err != nil {
			return err
		}
		err := s.auth.ConfirmPassword(ctxOf(c), p, password)
		var invalid *auth.ValidationError
		if errors.As(err, &invalid) {
			s.countFailedPassword(c, account)
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
