package handlers

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"gatehouse/services/auth"
)

// bearer authenticates /api/ requests by their access token; the principal goes in Locals.
func (s *Server) bearer(c *fiber.Ctx) error {
	header := c.Get(fiber.HeaderAuthorization)
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return errUnauthorized
	}
	p, err := s.auth.Verify(ctxOf(c), strings.TrimSpace(token))
	if err != nil {
		if auth.SignedOut(err) {
			return errUnauthorized
		}
		return err
	}
	c.Locals(localPrincipal, p)
	return c.Next()
}

func principal(c *fiber.Ctx) *auth.Principal {
	p, _ := c.Locals(localPrincipal).(*auth.Principal)
	return p
}
