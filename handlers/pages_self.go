package handlers

import (
	"github.com/gofiber/fiber/v2"

	"gatehouse/views/pages"
)

// deleteAccount is POST /account/delete: with the current password (checked under the shared
// password limits), deletes the account and everything of it, clears this browser's cookies and
// sends it to the sign-in page.
func (s *Server) deleteAccount(c *fiber.Ctx) error {
	p := principal(c)
	err := s.checkPassword(c, p.Email, func() error {
		return s.auth.DeleteAccount(ctxOf(c), p, formValue(c, "current_password"), s.ip(c))
	})
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
	s.clearSessionCookies(c)
	return c.Redirect("/login?done=deleted", fiber.StatusSeeOther)
}

// exportAccount is GET /account/export: the signed-in person's data as a JSON download.
func (s *Server) exportAccount(c *fiber.Ctx) error {
	data, err := s.auth.ExportData(ctxOf(c), principal(c))
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="gatehouse-export.json"`)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(data)
}
