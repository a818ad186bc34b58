package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"time"

	"github.com/gofiber/fiber/v2"

	"gatehouse/services/auth"
)

// tokenBody is the contract's token answer.
type tokenBody struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
}

func (s *Server) tokenBody(issued *auth.Issued) tokenBody {
	return tokenBody{AccessToken: issued.AccessToken, TokenType: "Bearer", ExpiresIn: int(issued.AccessExpiresAt.Sub(s.now()).Round(time.Second) / time.Second)}
}

type loginRequest struct {
	Email      string `json:"email"`
	Password   string `json:"password"`
	DeviceName string `json:"device_name"`
}

// decodeJSON reads one JSON object into dst; anything else is a 400.
func decodeJSON(body []byte, dst any) error {
	if trimmed := bytes.TrimSpace(body); len(trimmed) == 0 || trimmed[0] != '{' {
		return errBadJSON
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(dst); err != nil {
		return errBadJSON
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errBadJSON
	}
	return nil
}

// apiLogin is POST /auth/login.
func (s *Server) apiLogin(c *fiber.Ctx) error {
	var req loginRequest
	if err := decodeJSON(c.Request().Body(), &req); err != nil {
		return err
	}
	client, err := s.client(c, req.DeviceName)
	if err != nil {
		return err
	}
	issued, err := s.signIn(c, req.Email, req.Password, client)
	var second *auth.SecondFactorRequired
	if errors.As(err, &second) {
		return secondFactorRequired(c, second)
	}
	if err != nil {
		return err
	}
	s.signedInCookies(c, client, issued, false)
	return c.JSON(s.tokenBody(issued))
}

// client describes the requesting device; an explicit name must be 1–64 characters.
func (s *Server) client(c *fiber.Ctx, name string) (auth.Client, error) {
	if name == "" {
		name = c.Get("X-Device-Name")
	}
	if name != "" {
		valid, err := auth.ValidateDeviceName("device_name", name)
		if err != nil {
			return auth.Client{}, err
		}
		name = valid
	}
	client := auth.Client{DeviceName: name, UserAgent: c.Get(fiber.HeaderUserAgent), IP: s.ip(c)}
	if h := c.Get("X-Device-Id"); h != "" {
		if !deviceIDPattern.MatchString(h) {
			return auth.Client{}, errBadDeviceID
		}
		client.DeviceID = h // an app names its own device
		return client, nil
	}
	// A browser gets a new device id at each sign-in (set by signedInCookies once it succeeds),
	// so that a device cookie planted beforehand names nothing afterwards; the session of the id
	// it held is the one this sign-in replaces.
	client.DeviceID = randomToken()
	if old := c.Cookies(s.cookies.device); deviceIDPattern.MatchString(old) {
		client.Replaces = old
	}
	return client, nil
}

// signedInCookies stores a successful sign-in in the browser: the session cookies, a new CSRF
// cookie, and the device cookie when the device id is the browser's (not an app's X-Device-Id).
func (s *Server) signedInCookies(c *fiber.Ctx, client auth.Client, issued *auth.Issued, page bool) {
	if c.Get("X-Device-Id") == "" {
		s.setCookie(c, s.cookies.device, client.DeviceID, deviceCookieMaxAge)
	}
	s.renewCSRF(c)
	access := ""
	if page {
		access = issued.AccessToken
	}
	s.setSessionCookies(c, issued.RefreshToken, access)
}

// signIn checks the password under the shared password limits (limits.go) and, on success,
// ends the session this browser held before.
func (s *Server) signIn(c *fiber.Ctx, email, password string, client auth.Client) (*auth.Issued, error) {
	var issued *auth.Issued
	err := s.checkPassword(c, email, func() error {
		var err error
		issued, err = s.auth.SignIn(ctxOf(c), email, password, client)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.endPreviousSession(c, issued)
	return issued, nil
}

// endPreviousSession signs out the session whose refresh cookie this browser still held (say,
// another account's), so that no session is left live with nobody able to use it.
func (s *Server) endPreviousSession(c *fiber.Ctx, issued *auth.Issued) {
	previous := c.Cookies(s.cookies.refresh)
	if previous == "" || previous == issued.RefreshToken {
		return
	}
	if err := s.auth.Logout(ctxOf(c), previous, s.ip(c)); err != nil {
		s.log.Warn("could not end the previous session of this browser", "request_id", requestID(c), "error", err)
	}
}

// apiRefresh is POST /auth/refresh: rotate the refresh cookie.
func (s *Server) apiRefresh(c *fiber.Ctx) error {
	presented := c.Cookies(s.cookies.refresh)
	if presented == "" {
		return apiError(fiber.StatusUnauthorized, "invalid_token", "No refresh cookie was sent. Sign in again.")
	}
	device, err := s.knownDeviceID(c)
	if err != nil {
		return err
	}
	if err := s.sessionLimit(c, refreshLimitKey(device, s.ip(c))); err != nil {
		return err
	}
	name := c.Get("X-Device-Name")
	if name != "" {
		if name, err = auth.ValidateDeviceName("X-Device-Name", name); err != nil {
			return err
		}
	}
	issued, err := s.auth.Refresh(ctxOf(c), presented, auth.Client{DeviceID: device, DeviceName: name, UserAgent: c.Get(fiber.HeaderUserAgent), IP: s.ip(c)})
	if err != nil {
		return err
	}
	s.setSessionCookies(c, issued.RefreshToken, "")
	return c.JSON(s.tokenBody(issued))
}

// apiLogout is POST /auth/logout: sign this device out, clear the cookies, 204 either way.
func (s *Server) apiLogout(c *fiber.Ctx) error {
	if presented := c.Cookies(s.cookies.refresh); presented != "" {
		if err := s.auth.Logout(ctxOf(c), presented, s.ip(c)); err != nil {
			return err
		}
	}
	s.clearSessionCookies(c)
	return c.SendStatus(fiber.StatusNoContent)
}
