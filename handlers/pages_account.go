package handlers

import (
	"github.com/gofiber/fiber/v2"

	"gatehouse/services/auth"
	"gatehouse/views/pages"
)

// accountPage is GET /account.
func (s *Server) accountPage(c *fiber.Ctx) error {
	page, err := s.accountModel(c)
	if err != nil {
		return err
	}
	return render(c, pages.Account(*page))
}

func (s *Server) accountModel(c *fiber.Ctx) (*pages.AccountPage, error) {
	u, err := s.auth.Account(ctxOf(c), principal(c).UserID)
	if err != nil {
		return nil, err
	}
	askToVerify := !u.EmailVerified && s.auth.Config().EmailVerification != auth.VerificationOff
	return &pages.AccountPage{Frame: s.frame(c, "Account"), Email: u.Email, DisplayName: u.DisplayName, AskToVerify: askToVerify,
		SignInNotices: u.SignInNotices, Errors: map[string]string{}}, nil
}

// changePassword is POST /account/password: bumps token_version and signs out every device;
// this one goes on in a new session, whose cookies replace the old ones.
func (s *Server) changePassword(c *fiber.Ctx) error {
	p := principal(c)
	var issued *auth.Issued
	err := s.checkPassword(c, p.Email, func() error {
		var err error
		issued, err = s.auth.ChangePassword(ctxOf(c), p, formValue(c, "current_password"),
			formValue(c, "new_password"), formValue(c, "new_password_confirm"), s.ip(c))
		return err
	})
	if err != nil {
		return s.accountRefused(c, err, nil)
	}
	s.setSessionCookies(c, issued.RefreshToken, issued.AccessToken)
	return c.Redirect("/account?done=password", fiber.StatusSeeOther)
}

// setDisplayName is POST /account/name: field display_name, empty for none. No security event:
// the name decides nothing about access.
func (s *Server) setDisplayName(c *fiber.Ctx) error {
	name := formValue(c, "display_name")
	err := s.auth.SetDisplayName(ctxOf(c), principal(c).UserID, name)
	if err != nil {
		return s.accountRefused(c, err, func(page *pages.AccountPage) { page.NewDisplayName = name })
	}
	return c.Redirect("/account?done=name", fiber.StatusSeeOther)
}

// accountRefused answers a refused form of the account page with the page again, every field
// error of err next to its field; keep puts back what the person typed.
func (s *Server) accountRefused(c *fiber.Ctx, err error, keep func(*pages.AccountPage)) error {
	errs, status, ok := formErrors(err)
	if !ok {
		return err
	}
	page, perr := s.accountModel(c)
	if perr != nil {
		return perr
	}
	page.Errors = errs
	if keep != nil {
		keep(page)
	}
	c.Status(status)
	return render(c, pages.Account(*page))
}
