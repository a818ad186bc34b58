package handlers

import (
	"crypto/rand"
	"encoding/base64"
	"regexp"
	"time"

	"github.com/gofiber/fiber/v2"
)

// cookieNames are the cookies Gatehouse sets. Over https they carry the __Host- prefix, which
// browsers only accept with Secure, Path=/ and no Domain, so no subdomain can plant them.
type cookieNames struct {
	refresh, access, device, csrf string
	secondStep                    string // the challenge of a sign-in waiting for its second factor
}

func newCookieNames(secure bool) cookieNames {
	prefix := ""
	if secure {
		prefix = "__Host-"
	}
	return cookieNames{refresh: prefix + "gh_refresh", access: prefix + "gh_access", device: prefix + "gh_device", csrf: prefix + "gh_csrf", secondStep: prefix + "gh_2fa"}
}

const deviceCookieMaxAge = 400 * 24 * time.Hour // the longest browsers keep a cookie

func (s *Server) setCookie(c *fiber.Ctx, name, value string, maxAge time.Duration) {
	c.Cookie(&fiber.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: int(maxAge / time.Second),
		Secure: s.secure, HTTPOnly: true, SameSite: fiber.CookieSameSiteLaxMode,
	})
}

func (s *Server) clearCookie(c *fiber.Ctx, name string) {
	c.Cookie(&fiber.Cookie{
		Name: name, Value: "", Path: "/", MaxAge: -1, Expires: time.Unix(0, 0),
		Secure: s.secure, HTTPOnly: true, SameSite: fiber.CookieSameSiteLaxMode,
	})
}

// setSessionCookies stores a sign-in or refresh result: the refresh cookie (Max-Age: the refresh
// idle lifetime) and, for pages, the access cookie (Max-Age: the access lifetime).
func (s *Server) setSessionCookies(c *fiber.Ctx, refresh, access string) {
	cfg := s.auth.Config()
	if refresh != "" {
		s.setCookie(c, s.cookies.refresh, refresh, cfg.RefreshIdleTTL)
	}
	if access != "" {
		s.setCookie(c, s.cookies.access, access, cfg.AccessTTL)
	}
}

func (s *Server) clearSessionCookies(c *fiber.Ctx) {
	s.clearCookie(c, s.cookies.refresh)
	s.clearCookie(c, s.cookies.access)
}

var deviceIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{8,128}$`)

// knownDeviceID is the device id the request names, or "" when it names none; unlike deviceID it
// never mints one, so that a refresh from a browser that lost its device cookie is not refused.
func (s *Server) knownDeviceID(c *fiber.Ctx) (string, error) {
	if h := c.Get("X-Device-Id"); h != "" {
		if !deviceIDPattern.MatchString(h) {
			return "", errBadDeviceID
		}
		return h, nil
	}
	if v := c.Cookies(s.cookies.device); deviceIDPattern.MatchString(v) {
		return v, nil
	}
	return "", nil
}

var errBadDeviceID = apiError(fiber.StatusBadRequest, "invalid_request", "X-Device-Id must be 8 to 128 letters, digits or . _ : -")

func randomToken() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
