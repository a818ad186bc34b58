package handlers

import (
	"log/slog"

	"github.com/gofiber/fiber/v2"

	"gatehouse/views/pages"
)

// lookUpSignedIn fills in who is signed in, and this browser's CSRF token, for an error page that
// was answered before they were read (a CSRF refusal, an unknown route), from the cookies alone:
// no refresh, no writes.
func (s *Server) lookUpSignedIn(c *fiber.Ctx) {
	if c.Locals(localCSRF) == nil { // the header's sign-out form needs this browser's own token
		if cookie := c.Cookies(s.cookies.csrf); cookie != "" && len(cookie) <= 64 {
			c.Locals(localCSRF, cookie)
		}
	}
	if principal(c) != nil {
		return
	}
	if access := c.Cookies(s.cookies.access); access != "" {
		if p, err := s.auth.Verify(ctxOf(c), access); err == nil {
			c.Locals(localPrincipal, p)
		}
	}
}

func (s *Server) renderError(c *fiber.Ctx, e *APIError) error {
	heading := map[int]string{
		400: "That did not work", 401: "Sign in needed", 403: "Not allowed", 404: "Page not found",
		413: "Too large", 415: "Not accepted", 429: "Too many attempts", 500: "Something went wrong", 503: "Unavailable for a moment",
	}[e.Status]
	if heading == "" {
		heading = "That did not work"
	}
	c.Status(e.Status)
	s.lookUpSignedIn(c)
	page := pages.ErrorPage{Frame: s.frame(c, heading), Status: e.Status, Heading: heading, Message: e.Message}
	if err := render(c, pages.Error(page)); err != nil {
		slog.Default().Error("render error page", "error", err)
		return c.SendString(e.Message)
	}
	return nil
}
