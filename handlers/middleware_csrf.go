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
// HMAC(server key, cookie). A POST whose form token does not match its cookie, or whose Origin is
// foreign, gets 403 and changes nothing. It is stateless, so any instance checks any form.
const csrfField = "_csrf"

func (s *Server) csrfToken(cookie string) string {
	mac := hmac.New(sha256.New, s.csrfKey)
	mac.Write([]byte("csrf:" + cookie))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// csrf issues the cookie on any page request that lacks one, and checks every POST.
func (s *Server) csrf(c *fiber.Ctx) error {
	cookie := c.Cookies(s.cookies.csrf)
	if c.Method() == fiber.MethodPost {
		if origin := c.Get(fiber.HeaderOrigin); origin != "" && origin != "null" && !s.allowedOrigin(origin) {
			return errForbiddenCSRF
		}
		if origin := c.Get(fiber.HeaderOrigin); origin == "null" {
			return errForbiddenCSRF
		}
		sent := c.FormValue(csrfField)
		if cookie == "" || sent == "" || subtle.ConstantTimeCompare([]byte(sent), []byte(s.csrfToken(cookie))) != 1 {
			return errForbiddenCSRF
		}
	}
	if cookie == "" || len(cookie) > 64 {
		cookie = randomToken()
		s.setCookie(c, s.cookies.csrf, cookie, deviceCookieMaxAge)
	}
	c.Locals(localCSRF, s.csrfToken(cookie))
	return c.Next()
}

func csrfFor(c *fiber.Ctx) string {
	t, _ := c.Locals(localCSRF).(string)
	return t
}
