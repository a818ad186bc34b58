package handlers

import (
	"errors"
	"net/url"

	"github.com/gofiber/fiber/v2"

	"gatehouse/services/auth"
)

var errSignedOut = errors.New("signed out")

// pageSession authenticates a page request by its access cookie. When that has expired but the
// refresh cookie is still good, it rotates on the server and answers the page without a login
// prompt; parallel requests of one page converge on one token by the retry grace window.
func (s *Server) pageSession(c *fiber.Ctx) error {
	p, err := s.pagePrincipal(c)
	if errors.Is(err, errSignedOut) {
		if c.Method() == fiber.MethodGet {
			return c.Redirect("/login?next="+url.QueryEscape(c.OriginalURL()), fiber.StatusSeeOther)
		}
		return c.Redirect("/login", fiber.StatusSeeOther)
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
			return nil, errSignedOut
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
