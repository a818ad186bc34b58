package handlers

import (
	"github.com/gofiber/fiber/v2"

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
	u, err := s.auth.User(ctxOf(c), principal(c).UserID)
	if err != nil {
		return nil, err
	}
	return &pages.AccountPage{Frame: s.frame(c, "Account"), Email: u.Email, DisplayName: u.DisplayName, Errors: map[string]string{}}, nil
}

// changePassword is POST /account/password: bumps token_version and signs out the other devices;
// this one stays signed in with a new access cookie.
func (s *Server) changePassword(c *fiber.Ctx) error {
	issued, err := s.auth.ChangePassword(ctxOf(c), principal(c), c.FormValue("current_password"),
		c.FormValue("new_password"), c.FormValue("new_password_confirm"), s.ip(c))
	if err != nil {
		e := classify(err)
		if e.Field == "" {
			return err
		}
		page, perr := s.accountModel(c)
		if perr != nil {
			return perr
		}
		page.Errors[e.Field] = e.Message
		c.Status(e.Status)
		return render(c, pages.Account(*page))
	}
	s.setSessionCookies(c, "", issued.AccessToken)
	return c.Redirect("/account?done=password", fiber.StatusSeeOther)
}
