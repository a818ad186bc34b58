package handlers

import (
	"errors"
	"net/url"

	"github.com/gofiber/fiber/v2"

	"gatehouse/services/auth"
)

var errSignedOut = errors.New("signed out")

// signedOutBecause is errSignedOut with the reason the sign-in page gives, as a flash key: only
// what the person could know already (their session expired, or was ended from elsewhere).
type signedOutBecause struct{ flash string }

func (e signedOutBecause) Error() string        { return "signed out: " + e.flash }
func (e signedOutBecause) Is(target error) bool { return target == errSignedOut }

// signedOutReason picks the sign-in page's explanation for a refresh that failed.
func signedOutReason(err error) error {
	switch {
	case errors.Is(err, auth.ErrTokenExpired):
		return signedOutBecause{"session-expired"}
	case errors.Is(err, auth.ErrSessionRevoked):
		return signedOutBecause{"signed-out-elsewhere"}
	case errors.Is(err, auth.ErrTokenReused):
		return signedOutBecause{"session-reused"}
	}
	return errSignedOut
}

// pageSession authenticates a page request by its access cookie. When that has expired but the
// refresh cookie is still good, it rotates on the server and answers the page without a login
// prompt; parallel requests of one page converge on one token by the retry grace window.
func (s *Server) pageSession(c *fiber.Ctx) error {
	p, err := s.pagePrincipal(c)
	if errors.Is(err, errSignedOut) {
		query := url.Values{}
		if c.Method() == fiber.MethodGet {
			query.Set("next", c.OriginalURL())
		}
		var because signedOutBecause
		if errors.As(err, &because) {
			query.Set("done", because.flash)
		}
		target := "/login"
		if len(query) > 0 {
			target += "?" + query.Encode()
		}
		return c.Redirect(target, fiber.StatusSeeOther)
	}
	if err != nil {
		return err
	}
	c.Locals(localPrincipal, p)
	return c.Next()
}

func (s *Server) pagePrincipal(c *fiber.Ctx) (*auth.Principal, error) {
	ctx := ctxOf(c)
	if access := c.Cookies(s.cookies.access); access != "" {
		p, err := s.auth.Verify(ctx, access)
		if err == nil {
			return p, nil
		}
		if !auth.SignedOut(err) {
			return nil, err // the database is down: say so rather than sign the user out
		}
	}
	presented := c.Cookies(s.cookies.refresh)
	if presented == "" {
		s.clearSessionCookies(c)
		return nil, errSignedOut
	}
	device, err := s.knownDeviceID(c)
	if err != nil {
		return nil, err
	}
	issued, err := s.auth.Refresh(ctx, presented, auth.Client{DeviceID: device, UserAgent: c.Get(fiber.HeaderUserAgent), IP: s.ip(c)})
	if err != nil {
		if auth.SignedOut(err) {
			s.clearSessionCookies(c)
			return nil, signedOutReason(err)
		}
		return nil, err
	}
	s.setSessionCookies(c, issued.RefreshToken, issued.AccessToken)
	p, err := s.auth.Verify(ctx, issued.AccessToken)
	if auth.SignedOut(err) {
		s.clearSessionCookies(c)
		return nil, errSignedOut
	}
	return p, err
}
