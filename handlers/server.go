// Package handlers is Gatehouse's HTTP surface: routes.go lists every route, server.go builds the
// Fiber app, errors.go turns errors into JSON or pages.
package handlers

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"gatehouse/services/auth"
	"gatehouse/services/ratelimit"
)

// Config is the part of Gatehouse's configuration the HTTP layer needs.
type Config struct {
	BaseURL           *url.URL
	AppOrigins        []string // exact origins ("https://app.example.com") allowed to use /auth/ with credentials
	TrustedProxies    []netip.Prefix
	SignupEnabled     bool
	BodyLimit         int // bytes
	LoginLimitAccount ratelimit.Rate
	LoginLimitIP      ratelimit.Rate
	SessionLimit      ratelimit.Rate // refreshes, and sign-out actions, per device session (zero: none)
	MetricsElsewhere  bool           // /metrics is served on its own address (GATEHOUSE_METRICS_ADDR), not here
}

// Deps are the server's collaborators.
type Deps struct {
	Auth    *auth.Service
	Limiter ratelimit.Limiter
	Log     *slog.Logger
	Metrics Metrics // nil: no metrics
	// Locate says roughly where an IP address is ("Lisbon, Portugal"), or "" (GATEHOUSE_GEOIP_DB);
	// nil: nowhere.
	Locate func(ip string) string
	Now    func() time.Time
}

// Metrics observes requests, and the part of each spent rendering its page; the Prometheus
// implementation lives in services/metrics.
type Metrics interface {
	ObserveRequest(route, method string, status int, elapsed time.Duration)
	ObserveRender(route string, elapsed time.Duration)
	Handler() http.Handler // the scrape endpoint, served by the adaptor in routes.go
}

// Server holds what every handler needs.
type Server struct {
	cfg     Config
	auth    *auth.Service
	limiter ratelimit.Limiter
	// sessions counts refreshes and sign-out actions per session in this instance (sessionLimit).
	sessions *ratelimit.Memory
	log      *slog.Logger
	metrics  Metrics
	locate   func(ip string) string
	now      func() time.Time
	cookies  cookieNames
	secure   bool
	origin   string
	csrfKey  []byte
}

// New builds the Fiber app with every route.
func New(cfg Config, d Deps, csrfKey []byte) *fiber.App {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Locate == nil {
		d.Locate = func(string) string { return "" }
	}
	secure := !plainLocalHTTP(cfg.BaseURL)
	s := &Server{
		cfg: cfg, auth: d.Auth, limiter: d.Limiter, sessions: ratelimit.NewMemory(d.Now), log: d.Log, metrics: d.Metrics, locate: d.Locate, now: d.Now,
		cookies: newCookieNames(secure), secure: secure, origin: originOf(cfg.BaseURL), csrfKey: csrfKey,
	}
	if s.insecureBaseURL() {
		d.Log.Warn("GATEHOUSE_BASE_URL is plain http at an address other than localhost", "base_url", cfg.BaseURL.String(),
			"effect", "the cookies are Secure, so browsers will not keep them over http and every form will answer 403",
			"fix", "serve over https (GATEHOUSE_BASE_URL https://…), or use http://localhost or http://127.0.0.1 for development")
	}
	app := fiber.New(fiber.Config{
		AppName:               "gatehouse",
		BodyLimit:             readLimit(cfg.BodyLimit),
		ErrorHandler:          s.errorHandler,
		DisableStartupMessage: true,
		// Strings from fiber.Ctx are copies, not views into buffers fasthttp reuses for the next
		// request: metric labels, cache keys and log fields may outlive the request.
		Immutable: true,
		// /API/me is not /api/me: a route is matched exactly as the JSON-or-page decision sees it.
		CaseSensitive: true,
		ReadTimeout:   30 * time.Second,
		WriteTimeout:  30 * time.Second,
		IdleTimeout:   120 * time.Second,
	})
	s.routes(app)
	return app
}

// readLimit is how much of a body the server reads before giving up on the connection. It is
// above the configured limit so that a moderately oversized body is read and answered with a clean
// 413 by bodyLimit: a server that stops reading mid-body resets the connection, and the client
// then sees a broken pipe instead of the answer.
func readLimit(limit int) int { return max(4*limit, 1<<20) }

// bodyLimit answers 413 to a body over the configured limit, before anything parses it. Bodies are
// read as sent: Fiber's c.Body() would inflate a Content-Encoding: gzip body without bound, so no
// handler uses it.
func (s *Server) bodyLimit(c *fiber.Ctx) error {
	if len(c.Request().Body()) > s.cfg.BodyLimit {
		return errTooLarge
	}
	return c.Next()
}

// plainLocalHTTP: cookies may lack Secure only when the portal is plain http on localhost or 127.0.0.1.
func plainLocalHTTP(base *url.URL) bool {
	host := base.Hostname()
	return base.Scheme == "http" && (host == "localhost" || host == "127.0.0.1")
}

func originOf(u *url.URL) string { return strings.ToLower(u.Scheme + "://" + u.Host) }

// allowedOrigin: the portal's own origin or a configured app origin.
func (s *Server) allowedOrigin(origin string) bool {
	origin = strings.ToLower(origin)
	if origin == s.origin {
		return true
	}
	for _, o := range s.cfg.AppOrigins {
		if origin == o {
			return true
		}
	}
	return false
}

func (s *Server) appOrigin(origin string) bool {
	origin = strings.ToLower(origin)
	for _, o := range s.cfg.AppOrigins {
		if origin == o {
			return true
		}
	}
	return false
}

func ctxOf(c *fiber.Ctx) context.Context { return c.UserContext() }

// ip is the client's address, worked out once per request (requestContext) and read from there.
func (s *Server) ip(c *fiber.Ctx) string {
	if ip, ok := c.Locals(localIP).(string); ok {
		return ip
	}
	ip := s.clientIP(c)
	c.Locals(localIP, ip)
	return ip
}

// clientIP reads the client's address. Every X-Forwarded-For line counts, joined in order: a proxy
// may add its own line instead of appending to the client's.
func (s *Server) clientIP(c *fiber.Ctx) string {
	var lines []string
	for _, v := range c.Request().Header.PeekAll(fiber.HeaderXForwardedFor) {
		lines = append(lines, string(v))
	}
	return clientIP(c.Context().RemoteIP().String(), strings.Join(lines, ","), s.cfg.TrustedProxies)
}
