package handlers

import (
	"strings"

	"github.com/gofiber/fiber/v2"
)

// authOrigin guards the cookie-authenticated /auth/ routes: a POST from an Origin that is neither
// the portal's nor a configured app origin gets 403 and changes nothing. CORS answers grant
// credentials only to configured app origins.
func (s *Server) authOrigin(c *fiber.Ctx) error {
	origin := c.Get(fiber.HeaderOrigin)
	if origin != "" && s.appOrigin(origin) {
		c.Vary(fiber.HeaderOrigin)
		c.Set(fiber.HeaderAccessControlAllowOrigin, origin)
		c.Set(fiber.HeaderAccessControlAllowCredentials, "true")
		if c.Method() == fiber.MethodOptions {
			c.Set(fiber.HeaderAccessControlAllowMethods, "POST, OPTIONS")
			c.Set(fiber.HeaderAccessControlAllowHeaders, "Content-Type, X-Device-Id, X-Device-Name")
			c.Set(fiber.HeaderAccessControlMaxAge, "600")
			return c.SendStatus(fiber.StatusNoContent)
		}
	}
	if c.Method() == fiber.MethodOptions {
		return c.SendStatus(fiber.StatusNoContent) // no CORS grant: the browser refuses the real request
	}
	if c.Method() == fiber.MethodPost && origin != "" && !s.allowedOrigin(origin) {
		return errOrigin
	}
	// Without Origin, a browser's Sec-Fetch-Site still tells a cross-site request apart.
	if c.Method() == fiber.MethodPost && origin == "" && strings.EqualFold(c.Get("Sec-Fetch-Site"), "cross-site") {
		return errOrigin
	}
	return c.Next()
}
