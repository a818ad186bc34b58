package handlers

import (
	"errors"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"gatehouse/services/auth"
	"gatehouse/services/ratelimit"
	"gatehouse/views/pages"
)

// home is GET /: to the devices page when signed in, else to sign-in.
func (s *Server) home(c *fiber.Ctx) error {
	if _, err := s.pagePrincipal(c); err == nil {
		return c.Redirect("/devices", fiber.StatusSeeOther)
	}
	return c.Redirect("/login", fiber.StatusSeeOther)
}

// loginPage is GET /login.
func (s *Server) loginPage(c *fiber.Ctx) error {
	next := s.safeNext(c.Query("next"))
	if _, err := s.pagePrincipal(c); err == nil {
		return c.Redirect(next, fiber.StatusSeeOther)
	}
	return render(c, pages.Login(pages.LoginPage{Frame: s.frame(c, "Sign in"), Next: c.Query("next"), SignupEnabled: s.cfg.SignupEnabled}))
}

// loginSubmit is POST /login: success 303s to next; failure answers 401 with the form again,
// one generic message and the email kept.
func (s *Server) loginSubmit(c *fiber.Ctx) error {
	email, password, next := formValue(c, "email"), formValue(c, "password"), formValue(c, "next")
	page := pages.LoginPage{Frame: s.frame(c, "Sign in"), Email: email, Next: next, SignupEnabled: s.cfg.SignupEnabled}
	client, err := s.client(c, "")
	if err != nil {
		return err
	}
	issued, err := s.signIn(c, email, password, client)
	var second *auth.SecondFactorRequired
	if errors.As(err, &second) {
		return s.toSecondStep(c, second, next)
	}
	if err != nil {
		e := classify(err)
		if e.Status >= 500 && e.Status != fiber.StatusServiceUnavailable {
			return err
		}
		page.Error = e.Message
		if e.RetryAfter > 0 {
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(e.RetryAfter))
		}
		page.OfferReset = e.Status == fiber.StatusTooManyRequests
		if errors.Is(err, auth.ErrInvalidCredentials) {
			page.Error = "The email or password is not right."
		}
		c.Status(e.Status)
		return render(c, pages.Login(page))
	}
	s.signedInCookies(c, client, issued, true)
	return c.Redirect(s.safeNext(next), fiber.StatusSeeOther)
}

// signupPage is GET /signup (404 when sign-up is off).
func (s *Server) signupPage(c *fiber.Ctx) error {
	if !s.cfg.SignupEnabled {
		return errNotFound
	}
	return render(c, pages.Signup(pages.SignupPage{Frame: s.frame(c, "Create your account")}))
}

// signupSubmit is POST /signup: success signs in and 303s to /devices; a refused form comes back
// with every problem at once (auth.CheckSignUp), then whether the address is taken.
func (s *Server) signupSubmit(c *fiber.Ctx) error {
	if !s.cfg.SignupEnabled {
		return errNotFound
	}
	email, name := formValue(c, "email"), formValue(c, "display_name")
	password, confirm := formValue(c, "password"), formValue(c, "password_confirm")
	page := pages.SignupPage{Frame: s.frame(c, "Create your account"), Email: email, DisplayName: name, Errors: map[string]string{}}
	client, err := s.client(c, "")
	if err != nil {
		return err
	}
	if err := s.limit(c, s.limiter.Hit, ratelimit.IPKey("signup-ip", client.IP), s.cfg.LoginLimitIP); err != nil {
		return err
	}
	if err := auth.CheckSignUp(email, name, password, confirm); err != nil {
		return s.signupRefused(c, page, err)
	}
	issued, err := s.auth.SignUp(ctxOf(c), email, password, name, client)
	if errors.Is(err, auth.ErrEmailNotVerified) {
		return render(c, pages.LinkAction(pages.LinkActionPage{Frame: s.frame(c, "Check your email"), Heading: "Check your email",
			Done: "Your account is created. We sent a link to " + email + ": open it to verify your address, then sign in.", Next: "/login"}))
	}
	if err != nil {
		return s.signupRefused(c, page, err)
	}
	s.signedInCookies(c, client, issued, true)
	return c.Redirect("/devices", fiber.StatusSeeOther)
}

// signupRefused answers a refused sign-up with the form again and every field's error.
func (s *Server) signupRefused(c *fiber.Ctx, page pages.SignupPage, err error) error {
	errs, status, ok := formErrors(err)
	if !ok {
		return err
	}
	page.Errors = errs
	c.Status(status)
	return render(c, pages.Signup(page))
}

// formErrors is what a form page shows after a refused submit: the message for every field err
// names (all of an auth.ValidationErrors, or the one field of a classified error such as a taken
// address), and the status to answer with. ok is false when err is no field's problem: the caller
// returns it to the error handler.
func formErrors(err error) (errs map[string]string, status int, ok bool) {
	e := classify(err)
	if e.Field == "" {
		return nil, 0, false
	}
	errs = map[string]string{e.Field: e.Message}
	for _, v := range auth.FieldErrors(err) {
		errs[v.Field] = v.Message
	}
	return errs, e.Status, true
}

// logout is POST /logout: sign this device out and go to sign-in.
func (s *Server) logout(c *fiber.Ctx) error {
	if presented := c.Cookies(s.cookies.refresh); presented != "" {
		if err := s.auth.Logout(ctxOf(c), presented, s.ip(c)); err != nil {
			return err
		}
	}
	s.clearSessionCookies(c)
	return c.Redirect("/login", fiber.StatusSeeOther)
}
