package handlers

import (
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"gatehouse/services/auth"
	"gatehouse/views/pages"
)

// reauthenticated runs a sensitive page action (ASVS 7.5.2). When the service answers that the
// password was entered too long ago on this device, it shows a prompt that posts back to the same
// route: the password, or, where the account has them, a second-factor code ("code") or a
// passkey's answer ("credential", filled in by the page's script). With one of those in the form
// it confirms it first, then runs the action.
func (s *Server) reauthenticated(c *fiber.Ctx, purpose string, action func() error) error {
	p := principal(c)
	confirmed, err := s.confirmIdentity(c, p)
	var invalid *auth.ValidationError
	if errors.As(err, &invalid) || errors.Is(err, auth.ErrPasskeyRefused) {
		page, perr := s.confirmPage(c, purpose)
		if perr != nil {
			return perr
		}
		switch {
		case errors.Is(err, auth.ErrPasskeyRefused):
			page.Error = "That passkey did not confirm it's you. Try again, or use your password."
		case invalid.Field == "code":
			page.CodeError = invalid.Message
		default:
			page.Error = invalid.Message
		}
		c.Status(fiber.StatusBadRequest)
		return render(c, pages.ConfirmPassword(page))
	}
	if err != nil {
		return err
	}
	if confirmed {
		p.AuthenticatedAt = s.now()
	}
	err = action()
	if errors.Is(err, auth.ErrReauthRequired) {
		page, perr := s.confirmPage(c, purpose)
		if perr != nil {
			return perr
		}
		c.Status(fiber.StatusForbidden)
		return render(c, pages.ConfirmPassword(page))
	}
	return err
}

// confirmIdentity checks the password, code or passkey answer in the form, if there is one, and
// tells whether one confirmed it's the person.
func (s *Server) confirmIdentity(c *fiber.Ctx, p *auth.Principal) (bool, error) {
	password, code, credential := formValue(c, "password"), formValue(c, "code"), formValue(c, "credential")
	var err error
	switch {
	case password != "":
		err = s.checkPassword(c, p.Email, func() error { return s.auth.ConfirmPassword(ctxOf(c), p, password, s.ip(c)) })
	case code != "":
		err = s.checkCode(c, p.UserID, func() error { return s.auth.ConfirmWithCode(ctxOf(c), p, code, s.ip(c)) })
	case credential != "":
		err = s.checkCode(c, p.UserID, func() error {
			return s.auth.ConfirmWithPasskey(ctxOf(c), p, formValue(c, "ceremony"), []byte(credential), s.ip(c))
		})
	default:
		return false, nil
	}
	return err == nil, err
}

// confirmPage is the re-authentication prompt for an action of this route, offering a code and a
// passkey where the account has them.
func (s *Server) confirmPage(c *fiber.Ctx, purpose string) (pages.ConfirmPasswordPage, error) {
	p := principal(c)
	sec, err := s.auth.SecurityOf(ctxOf(c), p.UserID)
	if err != nil {
		return pages.ConfirmPasswordPage{}, err
	}
	page := pages.ConfirmPasswordPage{Frame: s.frame(c, "Confirm it's you"), Action: c.Path(), Purpose: purpose}
	if strings.HasPrefix(c.Path(), "/account") {
		page.Cancel = "/account" // the security page itself asks first: back to the account
	}
	for _, f := range sec.Factors {
		page.Codes = page.Codes || f.Kind == "totp"
		page.Passkeys = page.Passkeys || f.Kind == "passkey"
	}
	page.Codes = page.Codes || sec.RecoveryCodesLeft > 0
	return page, nil
}
