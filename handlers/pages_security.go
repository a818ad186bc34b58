package handlers

import (
	"errors"

	"github.com/gofiber/fiber/v2"
	qrcode "github.com/skip2/go-qrcode"

	"gatehouse/services/auth"
	"gatehouse/views/pages"
)

// The security page (/account/security) and its actions. Every change to the factors asks for the
// password (or a code, or a passkey) again when it was entered longer ago than
// auth.SecurityReauthWindow: those changes decide who can sign in.

const securityPurpose = "change how you sign in"

// securityPage is GET /account/security; past the re-authentication window it asks first.
func (s *Server) securityPage(c *fiber.Ctx) error {
	p := principal(c)
	if err := s.auth.RequireSecurityReauth(p); err != nil {
		page, err := s.confirmPage(c, securityPurpose)
		if err != nil {
			return err
		}
		return render(c, pages.ConfirmPassword(page))
	}
	page, err := s.securityModel(c)
	if err != nil {
		return err
	}
	return render(c, pages.Security(*page))
}

// securityConfirm is POST /account/security: the answer to the prompt of securityPage.
func (s *Server) securityConfirm(c *fiber.Ctx) error {
	return s.securityAction(c, func() error {
		return c.Redirect("/account/security", fiber.StatusSeeOther)
	})
}

func (s *Server) securityModel(c *fiber.Ctx) (*pages.SecurityPage, error) {
	p := principal(c)
	sec, err := s.auth.SecurityOf(ctxOf(c), p.UserID)
	if err != nil {
		return nil, err
	}
	page := &pages.SecurityPage{Frame: s.frame(c, "Sign-in security"), Now: s.now(), RecoveryCodesLeft: sec.RecoveryCodesLeft, Errors: map[string]string{}}
	for _, f := range sec.Factors {
		page.Factors = append(page.Factors, pages.FactorRow{ID: f.ID, Kind: f.Kind, Name: f.Name, AddedAt: f.AddedAt,
			LastUsedAt: f.LastUsedAt, Last: len(sec.Factors) == 1})
	}
	return page, nil
}

// securityAction runs a change of the factors behind the security re-authentication.
func (s *Server) securityAction(c *fiber.Ctx, action func() error) error {
	return s.reauthenticated(c, securityPurpose, func() error {
		if err := s.auth.RequireSecurityReauth(principal(c)); err != nil {
			return err
		}
		return action()
	})
}

// beginTOTP is POST /account/security/totp: a new secret, shown as a QR code and as text.
func (s *Server) beginTOTP(c *fiber.Ctx) error {
	return s.securityAction(c, func() error {
		enrolment, err := s.auth.BeginTOTP(ctxOf(c), principal(c))
		if err != nil {
			return err
		}
		page, err := s.enrolModel(c, enrolment)
		if err != nil {
			return err
		}
		return render(c, pages.TOTPEnrol(page))
	})
}

func (s *Server) enrolModel(c *fiber.Ctx, e *auth.TOTPEnrolment) (pages.TOTPEnrolPage, error) {
	qr, err := qrcode.New(e.URI, qrcode.Medium)
	if err != nil {
		return pages.TOTPEnrolPage{}, err
	}
	return pages.TOTPEnrolPage{Frame: s.frame(c, "Set up your authenticator app"), FactorID: e.FactorID,
		Secret: e.Secret, URI: e.URI, QR: qr.Bitmap(), Name: "Authenticator app"}, nil
}

// confirmTOTP is POST /account/security/totp/confirm: fields factor, name, code. The first code
// turns the app on; with the account's first second factor come the recovery codes, shown once.
func (s *Server) confirmTOTP(c *fiber.Ctx) error {
	p := principal(c)
	factor, name, code := formValue(c, "factor"), formValue(c, "name"), formValue(c, "code")
	var codes []string
	err := s.checkCode(c, p.UserID, func() error {
		var err error
		codes, err = s.auth.ConfirmTOTP(ctxOf(c), p, factor, name, code, s.ip(c))
		return err
	})
	if errors.Is(err, auth.ErrFactorAlreadyOn) {
		return s.totpAlreadyOn(c)
	}
	if errors.Is(err, auth.ErrNotFound) {
		return c.Redirect("/account/security?done=enrolment-expired", fiber.StatusSeeOther)
	}
	var invalid *auth.ValidationError
	if errors.As(err, &invalid) {
		enrolment, eerr := s.auth.TOTPEnrolmentOf(ctxOf(c), p, factor)
		if errors.Is(eerr, auth.ErrFactorAlreadyOn) {
			return s.totpAlreadyOn(c)
		}
		if errors.Is(eerr, auth.ErrNotFound) {
			return c.Redirect("/account/security?done=enrolment-expired", fiber.StatusSeeOther)
		}
		if eerr != nil {
			return eerr
		}
		page, eerr := s.enrolModel(c, enrolment)
		if eerr != nil {
			return eerr
		}
		page.Name = name
		page.Error = invalid.Message
		if invalid.Field == "name" {
			page.Error = ""
			page.NameError = invalid.Message
		}
		c.Status(fiber.StatusBadRequest)
		return render(c, pages.TOTPEnrol(page))
	}
	if err != nil {
		return err
	}
	if codes != nil {
		return render(c, pages.RecoveryCodes(pages.RecoveryCodesPage{Frame: s.frame(c, "Save your recovery codes"), Codes: codes, First: true}))
	}
	return c.Redirect("/account/security?done=totp-added", fiber.StatusSeeOther)
}

// totpAlreadyOn answers a set-up form submitted again after it turned the app on (a double
// click, whose first answer never showed). When the app is the account's only factor, that first
// answer held the recovery codes, so the notice says how to get a new set.
func (s *Server) totpAlreadyOn(c *fiber.Ctx) error {
	sec, err := s.auth.SecurityOf(ctxOf(c), principal(c).UserID)
	if err != nil {
		return err
	}
	if len(sec.Factors) == 1 {
		return c.Redirect("/account/security?done=totp-already-on-codes", fiber.StatusSeeOther)
	}
	return c.Redirect("/account/security?done=totp-already-on", fiber.StatusSeeOther)
}

// newRecoveryCodes is POST /account/security/recovery-codes: a new set, which voids the old one.
func (s *Server) newRecoveryCodes(c *fiber.Ctx) error {
	return s.securityAction(c, func() error {
		codes, err := s.auth.RegenerateRecoveryCodes(ctxOf(c), principal(c), s.ip(c))
		var invalid *auth.ValidationError
		if errors.As(err, &invalid) {
			return c.Redirect("/account/security", fiber.StatusSeeOther)
		}
		if err != nil {
			return err
		}
		return render(c, pages.RecoveryCodes(pages.RecoveryCodesPage{Frame: s.frame(c, "Your new recovery codes"), Codes: codes}))
	})
}

// removeFactor is POST /account/security/factors/{id}/delete.
func (s *Server) removeFactor(c *fiber.Ctx) error {
	id := c.Params("id")
	return s.securityAction(c, func() error {
		left, err := s.auth.RemoveFactor(ctxOf(c), principal(c), id, s.ip(c))
		if err != nil {
			return err
		}
		if !left {
			return c.Redirect("/account/security?done=factor-removed-last", fiber.StatusSeeOther)
		}
		return c.Redirect("/account/security?done=factor-removed", fiber.StatusSeeOther)
	})
}

// renameFactor is POST /account/security/factors/{id}/rename: field name.
func (s *Server) renameFactor(c *fiber.Ctx) error {
	id, name := c.Params("id"), formValue(c, "name")
	if err := s.auth.RequireSecurityReauth(principal(c)); err != nil {
		// The answer shows the security page, which asks for the password again past the window.
		return s.securityAction(c, func() error { return c.Redirect("/account/security", fiber.StatusSeeOther) })
	}
	err := s.auth.RenameFactor(ctxOf(c), principal(c), id, name)
	var invalid *auth.ValidationError
	if errors.As(err, &invalid) {
		page, perr := s.securityModel(c)
		if perr != nil {
			return perr
		}
		for i := range page.Factors {
			if page.Factors[i].ID == id {
				page.Factors[i].RenameError, page.Factors[i].RenameValue = invalid.Message, name
			}
		}
		c.Status(fiber.StatusBadRequest)
		return render(c, pages.Security(*page))
	}
	if err != nil {
		return err
	}
	return c.Redirect("/account/security?done=factor-renamed", fiber.StatusSeeOther)
}
