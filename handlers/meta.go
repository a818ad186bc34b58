package handlers

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"
)

// jwks is GET /.well-known/jwks.json.
func (s *Server) jwks(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, "application/jwk-set+json")
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	return c.Send(s.auth.JWKS())
}

// healthz answers 200 while the process runs.
func healthz(c *fiber.Ctx) error { return c.SendString("ok") }

// readyz answers 200 when the database answers, 503 otherwise.
func (s *Server) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(ctxOf(c), 2*time.Second)
	defer cancel()
	if err := s.auth.Ready(ctx); err != nil {
		c.Set(fiber.HeaderRetryAfter, "2")
		return c.Status(fiber.StatusServiceUnavailable).SendString("database unavailable")
	}
	return c.SendString("ready")
}
