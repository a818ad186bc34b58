package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"gatehouse/services/auth"
	"gatehouse/services/ratelimit"
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
	if err != nil {
		return err
	}
	s.setSessionCookies(c, issued.RefreshToken, "")
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
	device, err := s.deviceID(c)
	if err != nil {
		return auth.Client{}, err
	}
	return auth.Client{DeviceID: device, DeviceName: name, UserAgent: c.Get(fiber.HeaderUserAgent), IP: s.ip(c)}, nil
}

// signIn applies the sign-in rate limits around the password check: attempts per client IP, and
// failed attempts per account. Both answer 429 with Retry-After.
func (s *Server) signIn(c *fiber.Ctx, email, password string, client auth.Client) (*auth.Issued, error) {
	ctx := ctxOf(c)
	if err := s.limit(c, s.limiter.Hit, "login-ip:"+client.IP, s.cfg.LoginLimitIP); err != nil {
		return nil, err
	}
	account := accountLimitKey(normalizedOrRaw(email))
	if err := s.limit(c, s.limiter.Peek, account, s.cfg.LoginLimitAccount); err != nil {
		return nil, err
	}
	issued, err := s.auth.SignIn(ctx, email, password, client)
	if errors.Is(err, auth.ErrInvalidCredentials) {
		s.countFailedPassword(c, account)
	}
	if err == nil {
		s.endPreviousSession(c, issued)
	}
	return issued, err
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

// accountLimitKey names an account's failed-password counter, shared by sign-in and re-authentication.
func accountLimitKey(email string) string { return "login-account:" + email }

// countFailedPassword counts a wrong password against the account's limit.
func (s *Server) countFailedPassword(c *fiber.Ctx, account string) {
	if _, err := s.limiter.Hit(ctxOf(c), account, s.cfg.LoginLimitAccount); err != nil {
		s.log.Warn("rate limiter unavailable", "request_id", requestID(c), "error", err)
	}
}

func normalizedOrRaw(email string) string {
	if n, err := auth.NormalizeEmail(email); err == nil {
		return n
	}
	return email
}

// limit asks the limiter and turns a refusal into 429 rate_limited with Retry-After. When the
// limiter itself fails (Redis down), sign-in goes on: the per-process argon2 bound still holds.
func (s *Server) limit(c *fiber.Ctx, ask func(context.Context, string, ratelimit.Rate) (ratelimit.Decision, error), key string, r ratelimit.Rate) error {
	d, err := ask(ctxOf(c), key, r)
	if err != nil {
		s.log.Warn("rate limiter unavailable", "request_id", requestID(c), "error", err)
		return nil
	}
	if !d.Allowed {
		secs := int(d.RetryAfter/time.Second) + 1
		return &APIError{Status: fiber.StatusTooManyRequests, Code: "rate_limited", Message: "Too many attempts. Try again in " + strconv.Itoa(secs) + " seconds.", RetryAfter: secs}
	}
	return nil
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
