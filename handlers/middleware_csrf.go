package handlers

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"

	"github.com/gofiber/fiber/v2"
)

// CSRF protection for the pages is a signed double-submit token (OWASP's recommended stateless
// pattern): the browser holds a random HttpOnly cookie, and every form carries
// HMAC(server key, cookie, session id). A POST whose form token does not match its cookie and the
// session it is signed in with, or whose Origin is foreign, gets 403 and changes nothing. The
// cookie is replaced at every sign-in, and the token names the session, so a cookie pair planted
// before sign-in is worthless after it. It is stateless, so any instance checks any form.
// The token is read from the form body only, never from the query string.
const csrfField = "_csrf"

func (s *Server) csrfToken(cookie, sessionID string) string {
	mac := hmac.New(sha256.New, s.csrfKey)
	mac.Write([]byte("csrf:" + cookie + ":" + sessionID))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// csrfCookie gives a browser without a CSRF cookie a new one, and keeps the cookie for the forms
// this request renders.
func (s *Server) csrfCookie(c *fiber.Ctx) error {
	cookie := c.Cookies(s.cookies.csrf)
	if cookie == "" || len(cookie) > 64 {
		cookie = s.renewCSRF(c)
	}
	c.Locals(localCSRF, cookie)
	return c.Next()
}

// renewCSRF sets a new CSRF cookie (at sign-in) and returns it.
func (s *Server) renewCSRF(c *fiber.Ctx) string {
	cookie := randomToken()
	s.setCookie(c, s.cookies.csrf, cookie, deviceCookieMaxAge)
	c.Locals(localCSRF, cookie)
	return cookie
}

// csrfCheck refuses a POST with a foreign Origin or without the token of this browser's cookie
// and signed-in session. On signed-in routes it runs after pageSession, which names the session.
func (s *Server) csrfCheck(c *fiber.Ctx) error {
	if c.Method() != fiber.MethodPost {
		return c.Next()
	}
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "null" || (origin != "" && !s.allowedOrigin(origin)) {
		return errForbiddenCSRF
	}
	cookie, sent := c.Cookies(s.cookies.csrf), formValue(c, csrfField)
	if cookie == "" && s.insecureBaseURL() {
		return errPlainHTTP
	}
	if cookie == "" || len(cookie) > 64 || sent == "" ||
		subtle.ConstantTimeCompare([]byte(sent), []byte(s.csrfToken(cookie, sessionOf(c)))) != 1 {
		return errForbiddenCSRF
	}
	return c.Next()
}

// insecureBaseURL: the portal is configured on plain http at an address other than localhost, so
// its cookies are Secure and browsers refuse to keep them: no form can work (errPlainHTTP says so).
func (s *Server) insecureBaseURL() bool {
	return s.secure && s.cfg.BaseURL != nil && s.cfg.BaseURL.Scheme == "http"
}

// csrfFor is the token the forms of this response carry.
func (s *Server) csrfFor(c *fiber.Ctx) string {
	cookie, _ := c.Locals(localCSRF).(string)
	if cookie == "" {
		return ""
	}
	return s.csrfToken(cookie, sessionOf(c))
}

func sessionOf(c *fiber.Ctx) string {
	if p := principal(c); p != nil {
		return p.SessionID
	}
	return ""
}
