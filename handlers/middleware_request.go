package handlers

import (
	"log/slog"
	"regexp"
	"time"

	"github.com/gofiber/fiber/v2"
)

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// requestContext gives every request an id (a well-formed incoming X-Request-Id is kept), echoes
// it in the response, logs one line per request with it, and observes latency by route.
func (s *Server) requestContext(c *fiber.Ctx) error {
	id := c.Get(fiber.HeaderXRequestID)
	if !requestIDPattern.MatchString(id) {
		id = randomToken()[:16]
	}
	c.Locals(localRequestID, id)
	c.Set(fiber.HeaderXRequestID, id)
	start := time.Now()
	err := c.Next()
	if err != nil {
		if herr := s.errorHandler(c, err); herr != nil {
			c.Status(fiber.StatusInternalServerError)
		}
	}
	status := c.Response().StatusCode()
	elapsed := time.Since(start)
	route := c.Route().Path
	if s.metrics != nil {
		s.metrics.ObserveRequest(route, c.Method(), status, elapsed)
		if rendered, ok := c.Locals(localRenderTime).(time.Duration); ok {
			s.metrics.ObserveRender(route, rendered)
		}
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelWarn
	}
	// The path, never the query string or headers: they may carry tokens.
	s.log.Log(c.UserContext(), level, "request", "request_id", id, "method", c.Method(), "route", route,
		"path", c.Path(), "status", status, "duration_ms", float64(elapsed.Microseconds())/1000, "ip", s.ip(c))
	return nil
}

type localKey int

const (
	localRequestID localKey = iota
	localPrincipal
	localCSRF
	localIP
	localRenderTime // time.Duration: how long render took in this request
)

func requestID(c *fiber.Ctx) string {
	id, _ := c.Locals(localRequestID).(string)
	return id
}

// securityHeaders sets the headers every response carries.
func (s *Server) securityHeaders(c *fiber.Ctx) error {
	h := &c.Response().Header
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if s.cfg.BaseURL.Scheme == "https" {
		h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
	}
	return c.Next()
}

// noStore keeps signed-in pages and token answers out of every cache.
func noStore(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderPragma, "no-cache")
	return c.Next()
}
