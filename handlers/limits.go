package handlers

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"gatehouse/services/auth"
	"gatehouse/services/ratelimit"
)

// checkPassword runs one password check under the limits every password check shares (sign-in
// page and API, the re-authentication prompt, the password change): attempts per client IP, and
// attempts per account. The account's attempt is reserved before the check runs and given back
// when the password turns out right, so N concurrent guesses evaluate at most the limit and one
// account can never hold more than that many of the argon2 slots.
//
// A browser that has signed in to the account before (its device cookie names a device the
// account knows) is let in by a counter of its own, so that guesses from elsewhere cannot lock the
// owner out on their own device (OWASP's answer to lockout abuse); its own wrong passwords still
// count against the account as well. Only the browser's device cookie counts: it is random and
// HttpOnly, while an app's X-Device-Id is a name anyone could send.
func (s *Server) checkPassword(c *fiber.Ctx, email string, check func() error) error {
	account := ratelimit.Key("password-account", email)
	if device := s.knownBrowser(c, email); device != "" {
		return s.guardedCheck(c, ratelimit.Key("password-known-device", email+"\x00"+device), check, account)
	}
	return s.guardedCheck(c, account, check)
}

// knownBrowser is the browser's device id when the account has signed in on it before, else "".
func (s *Server) knownBrowser(c *fiber.Ctx, email string) string {
	device := c.Cookies(s.cookies.device)
	if c.Get("X-Device-Id") != "" || !deviceIDPattern.MatchString(device) {
		return ""
	}
	known, err := s.auth.KnownDeviceOf(ctxOf(c), email, device)
	if err != nil {
		s.log.Warn("could not tell whether the device is known: counted with the account", "request_id", requestID(c), "error", err)
	}
	if !known {
		return ""
	}
	return device
}

// guardedCheck runs one check of a secret (a password, a second-factor code) under the limit per
// client IP, which every such check shares, and the limit of the gate counter; alsoCount are
// counters the attempt counts on without being refused by them. A wrong secret keeps its attempt
// counted; anything else gives the attempt back.
func (s *Server) guardedCheck(c *fiber.Ctx, gate string, check func() error, alsoCount ...string) error {
	if err := s.limit(c, s.limiter.Hit, ratelimit.IPKey("password-ip", s.ip(c)), s.cfg.LoginLimitIP); err != nil {
		return err
	}
	if err := s.limit(c, s.limiter.Hit, gate, s.cfg.LoginLimitAccount); err != nil {
		return err
	}
	counted := []string{gate}
	for _, key := range alsoCount {
		_, err := s.limiter.Hit(ctxOf(c), key, s.cfg.LoginLimitAccount)
		if err != nil {
			s.log.Warn("rate limiter unavailable: attempt not counted", "request_id", requestID(c), "error", err)
		}
		if err == nil {
			counted = append(counted, key) // counted even when full (both limiters count every hit)
		}
	}
	err := check()
	if errors.Is(err, auth.ErrInvalidCredentials) || errors.Is(err, auth.ErrWrongPassword) ||
		errors.Is(err, auth.ErrInvalidCode) || errors.Is(err, auth.ErrPasskeyRefused) {
		return err // the attempt stays counted
	}
	for _, key := range counted {
		if uerr := s.limiter.Undo(ctxOf(c), key); uerr != nil {
			s.log.Warn("rate limiter: could not give back an attempt", "request_id", requestID(c), "error", uerr)
		}
	}
	return err
}

// limit asks the limiter and turns a refusal into 429 rate_limited with Retry-After. The shared
// limiter falls back to a local one while Redis is down (ratelimit.Fallback); should a limiter
// still fail, the request goes on and the failure is logged.
func (s *Server) limit(c *fiber.Ctx, ask func(context.Context, string, ratelimit.Rate) (ratelimit.Decision, error), key string, r ratelimit.Rate) error {
	d, err := ask(ctxOf(c), key, r)
	if err != nil {
		s.log.Warn("rate limiter unavailable: request allowed", "request_id", requestID(c), "error", err)
		return nil
	}
	if !d.Allowed {
		return rateLimited(d.RetryAfter)
	}
	return nil
}

func rateLimited(wait time.Duration) *APIError {
	secs := int(wait/time.Second) + 1
	return &APIError{Status: fiber.StatusTooManyRequests, Code: "rate_limited", Message: "Too many attempts. Try again in " + waitInWords(wait) + ".", RetryAfter: secs}
}

// waitInWords says a wait as people do: seconds up to a minute and a half, then whole minutes,
// rounded up ("12 minutes", not "710 seconds").
func waitInWords(wait time.Duration) string {
	secs := int((wait + time.Second - 1) / time.Second)
	switch {
	case secs <= 1:
		return "1 second"
	case secs <= 90:
		return strconv.Itoa(secs) + " seconds"
	}
	return strconv.Itoa(int((wait+time.Minute-1)/time.Minute)) + " minutes"
}

// sessionLimit bounds how often one device session may refresh or sign devices out
// (GATEHOUSE_SESSION_LIMIT), so that one signed-in client cannot grow the token history or the
// security events without bound. It counts in this instance's memory: the hot refresh path takes
// no extra round trip, and across N instances the bound is N times the rate.
func (s *Server) sessionLimit(c *fiber.Ctx, key string) error {
	if s.cfg.SessionLimit.N == 0 {
		return nil
	}
	d, _ := s.sessions.Hit(ctxOf(c), key, s.cfg.SessionLimit)
	if !d.Allowed {
		return rateLimited(d.RetryAfter)
	}
	return nil
}

// refreshLimitKey names the counter of a refresh: its device, which a refresh must present to
// succeed (rotation checks it), or the client's network when it names none.
func refreshLimitKey(device, ip string) string {
	if device != "" {
		return ratelimit.Key("refresh-device", device)
	}
	return ratelimit.IPKey("refresh-ip", ip)
}

// sessionActions limits the sign-out actions of the signed-in session (after bearer or pageSession).
func (s *Server) sessionActions(c *fiber.Ctx) error {
	if p := principal(c); p != nil {
		if err := s.sessionLimit(c, "session-actions:"+p.SessionID); err != nil {
			return err
		}
	}
	return c.Next()
}
