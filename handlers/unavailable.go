package handlers

import (
	"log/slog"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
)

// errStarting answers every request that needs the database while it cannot be reached at start.
var errStarting = &APIError{
	Status: fiber.StatusServiceUnavailable, Code: "unavailable", RetryAfter: 2,
	Message: "The service is starting and cannot reach its database yet. Try again in a moment.",
}

// startingPage is the page a browser gets meanwhile: plain HTML, with nothing that needs the
// database, the keys or the stylesheet.
const startingPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Unavailable for a moment</title></head>
<body><h1>Unavailable for a moment</h1><p>Gatehouse is starting and cannot reach its database yet. Try again in a moment.</p></body></html>
`

// Unavailable builds the app that holds the port while the database cannot be reached at start;
// serve swaps in New's app once it answers. The process is alive (/healthz 200) but not ready
// (/readyz 503), and every other request gets 503 unavailable with Retry-After: the contract's JSON
// error under /auth/, /api/ and /.well-known/, a short page elsewhere. Requests are logged with
// their ids, as New's are.
func Unavailable(cfg Config, log *slog.Logger) *fiber.App {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg, log: log, now: time.Now}
	app := fiber.New(fiber.Config{ // as New's, so that a request is read and routed the same way
		AppName:               "gatehouse",
		BodyLimit:             readLimit(cfg.BodyLimit),
		ErrorHandler:          func(c *fiber.Ctx, _ error) error { return answerStarting(c) },
		DisableStartupMessage: true,
		Immutable:             true,
		CaseSensitive:         true,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           120 * time.Second,
	})
	app.Use(recover.New(), s.requestContext, s.securityHeaders)
	app.Get("/healthz", healthz)
	app.Get("/readyz", notReady)
	app.Use(answerStarting)
	return app
}

// notReady is /readyz while the database has not answered yet.
func notReady(c *fiber.Ctx) error {
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(errStarting.RetryAfter))
	return c.Status(fiber.StatusServiceUnavailable).SendString("database unavailable")
}

// answerStarting answers 503 unavailable, in JSON where errorHandler would answer JSON. It writes
// the answer itself instead of returning an error: requestContext's error path renders pages that
// look up the signed-in user, and there is no auth service to ask yet.
func answerStarting(c *fiber.Ctx) error {
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(errStarting.RetryAfter))
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Status(errStarting.Status)
	if wantsJSON(c) {
		return c.JSON(fiber.Map{"error": errStarting.Code, "message": errStarting.Message})
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return c.SendString(startingPage)
}
