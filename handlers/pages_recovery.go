package handlers

import (
	"errors"

	"github.com/gofiber/fiber/v2"

	"gatehouse/models"
	"gatehouse/services/auth"
	"gatehouse/services/ratelimit"
	"gatehouse/views/components"
	"gatehouse/views/pages"
)

// linkProblem is what a page says of a link that no longer works: one answer for used, expired,
// superseded and tampered links, since telling them apart helps nobody but a guesser.
const linkProblem = "This link has been used already, has expired, or a newer one was sent. Links work once, for a limited time."

// forgotPage is GET /password/forgot.
func (s *Server) forgotPage(c *fiber.Ctx) error {
	return render(c, pages.ForgotPassword(pages.ForgotPasswordPage{Frame: s.frame(c, "Reset your password")}))
}

// forgotSubmit is POST /password/forgot: the same answer, at once, whatever the address.
func (s *Server) forgotSubmit(c *fiber.Ctx) error {
	email := formValue(c, "email")
	page := pages.ForgotPasswordPage{Frame: s.frame(c, "Reset your password"), Email: email, Errors: map[string]string{}}
	if _, err := auth.NormalizeEmail(email); err != nil {
		page.Errors["email"] = classify(err).Message
		c.Status(fiber.StatusBadRequest)
		return render(c, pages.ForgotPassword(page))
	}
	if err := s.resetLimits(c, email); err != nil {
		return err
	}
	s.auth.RequestPasswordReset(ctxOf(c), email)
	page.Sent, page.ValidFor = true, components.Lifetime(s.auth.Config().ResetTTL)
	return render(c, pages.ForgotPassword(page))
}

// resetLimits bounds reset requests per client network and per address, like sign-ins.
func (s *Server) resetLimits(c *fiber.Ctx, email string) error {
	if err := s.limit(c, s.limiter.Hit, ratelimit.IPKey("reset-ip", s.ip(c)), s.cfg.LoginLimitIP); err != nil {
		return err
	}
	return s.limit(c, s.limiter.Hit, ratelimit.Key("reset-account", email), s.cfg.LoginLimitAccount)
}

// resetPage is GET /password/reset?token=T: the form, or why the link does not work. It never
// uses the token.
func (s *Server) resetPage(c *fiber.Ctx) error {
	token := c.Query("token")
	page := pages.ResetPasswordPage{Frame: s.frame(c, "Choose a new password"), Token: token, Usable: true, Errors: map[string]string{}}
	if err := s.auth.CheckLink(ctxOf(c), token, models.LinkPasswordReset); err != nil {
		if !errors.Is(err, auth.ErrInvalidToken) {
			return err
		}
		page.Usable, page.Problem = false, linkProblem
		c.Status(fiber.StatusBadRequest)
	}
	return render(c, pages.ResetPassword(page))
}

// resetSubmit is POST /password/reset: sets the password, signs out every device, signs this
// browser in and goes to "Your devices".
func (s *Server) resetSubmit(c *fiber.Ctx) error {
	token := formValue(c, "token")
	client, err := s.client(c, "")
	if err != nil {
		return err
	}
	issued, err := s.auth.ResetPassword(ctxOf(c), token, formValue(c, "new_password"), formValue(c, "new_password_confirm"), client)
	var second *auth.SecondFactorRequired
	if errors.As(err, &second) {
		return s.toSecondStep(c, second, "/devices?done=password-reset")
	}
	if err != nil {
		page := pages.ResetPasswordPage{Frame: s.frame(c, "Choose a new password"), Token: token, Usable: true, Errors: map[string]string{}}
		errs, _, isField := formErrors(err)
		switch {
		case errors.Is(err, auth.ErrInvalidToken):
			page.Usable, page.Problem = false, linkProblem
		case isField:
			page.Errors = errs
		default:
			return err
		}
		c.Status(fiber.StatusBadRequest)
		return render(c, pages.ResetPassword(page))
	}
	s.endPreviousSession(c, issued)
	s.signedInCookies(c, client, issued, true)
	return c.Redirect("/devices?done=password-reset", fiber.StatusSeeOther)
}

// linkFlow describes one of the one-button link pages.
type linkFlow struct {
	purpose, action, title, explain, button, done, next string
	danger                                              bool
	use                                                 func(s *Server, c *fiber.Ctx, token string) error
}

var (
	verifyFlow = linkFlow{purpose: models.LinkVerifyEmail, action: "/verify-email", title: "Verify your email address",
		explain: "Confirm that this address is yours, so that we can reach you about your account.",
		button:  "Verify my address", done: "Your email address is verified. Thank you.", next: "/devices",
		use: func(s *Server, c *fiber.Ctx, token string) error { return s.auth.VerifyEmail(ctxOf(c), token) }}
	confirmEmailFlow = linkFlow{purpose: models.LinkEmailChange, action: "/account/email/confirm", title: "Confirm your new email address",
		explain: "Make this address the one your account uses. We will tell your old address, with a way to undo it.",
		button:  "Use this address", done: "Your account now uses this email address.", next: "/account",
		use: func(s *Server, c *fiber.Ctx, token string) error { return s.auth.ConfirmEmailChange(ctxOf(c), token) }}
	undoEmailFlow = linkFlow{purpose: models.LinkEmailUndo, action: "/account/email/undo", title: "Undo the email change",
		explain: "This puts your old address back and signs your account out on every device, in case someone else made the change. Then reset your password from the sign-in page.",
		button:  "Undo the change and sign out everywhere", done: "Your old address is back and every device is signed out. Reset your password to be safe.",
		next: "/password/forgot", danger: true,
		use: func(s *Server, c *fiber.Ctx, token string) error { return s.auth.UndoEmailChange(ctxOf(c), token) }}
)

// linkPage is the GET of a link: the button that uses it, or why it does not work.
func (s *Server) linkPage(flow linkFlow) fiber.Handler {
	return func(c *fiber.Ctx) error {
		token := c.Query("token")
		page := flow.page(s.frame(c, flow.title), token)
		if err := s.auth.CheckLink(ctxOf(c), token, flow.purpose); err != nil {
			if !errors.Is(err, auth.ErrInvalidToken) {
				return err
			}
			page.Usable, page.Problem = false, linkProblem
			c.Status(fiber.StatusBadRequest)
		}
		return render(c, pages.LinkAction(page))
	}
}

// linkSubmit is the POST of a link: uses it, then says what happened.
func (s *Server) linkSubmit(flow linkFlow) fiber.Handler {
	return func(c *fiber.Ctx) error {
		token := formValue(c, "token")
		page := flow.page(s.frame(c, flow.title), token)
		err := flow.use(s, c, token)
		switch {
		case err == nil:
			page.Done, page.Next = flow.done, flow.next
			if flow.danger {
				s.clearSessionCookies(c) // every session was signed out, this browser's too
			}
		case errors.Is(err, auth.ErrInvalidToken):
			page.Usable, page.Problem = false, linkProblem
			c.Status(fiber.StatusBadRequest)
		case errors.Is(err, auth.ErrEmailTaken):
			page.Usable, page.Problem = false, "Another account uses that address now, so it cannot be yours too."
			c.Status(fiber.StatusConflict)
		default:
			return err
		}
		return render(c, pages.LinkAction(page))
	}
}

func (f linkFlow) page(frame pages.Frame, token string) pages.LinkActionPage {
	return pages.LinkActionPage{Frame: frame, Token: token, Action: f.action, Heading: f.title, Explain: f.explain,
		Button: f.button, Danger: f.danger, Usable: true}
}

// changeEmail is POST /account/email: after the current password, a link to the new address.
func (s *Server) changeEmail(c *fiber.Ctx) error {
	p := principal(c)
	newEmail := formValue(c, "new_email")
	err := s.checkPassword(c, p.Email, func() error {
		return s.auth.RequestEmailChange(ctxOf(c), p, newEmail, formValue(c, "current_password"), s.ip(c))
	})
	if err == nil {
		return c.Redirect("/account?done=email-sent", fiber.StatusSeeOther)
	}
	errs, status, ok := formErrors(err)
	if errors.Is(err, auth.ErrEmailTaken) {
		errs, status, ok = map[string]string{"new_email": "Another account uses that address."}, fiber.StatusConflict, true
	}
	if !ok {
		return err
	}
	if message, found := errs["current_password"]; found { // the page has two password fields
		delete(errs, "current_password")
		errs["email_current_password"] = message
	}
	page, perr := s.accountModel(c)
	if perr != nil {
		return perr
	}
	page.NewEmail = newEmail
	page.Errors = errs
	c.Status(status)
	return render(c, pages.Account(*page))
}

// resendVerification is POST /account/verify-email/resend.
func (s *Server) resendVerification(c *fiber.Ctx) error {
	p := principal(c)
	if err := s.limit(c, s.limiter.Hit, ratelimit.Key("verify-resend", p.UserID), s.cfg.LoginLimitAccount); err != nil {
		return err
	}
	if err := s.auth.SendVerification(ctxOf(c), p.UserID); err != nil {
		return err
	}
	return c.Redirect("/account?done=verify-sent", fiber.StatusSeeOther)
}

// setNotices is POST /account/notifications: field sign_in_notices, on or off.
func (s *Server) setNotices(c *fiber.Ctx) error {
	var on bool
	switch formValue(c, "sign_in_notices") {
	case "on":
		on = true
	case "off":
	default:
		return apiError(fiber.StatusBadRequest, "invalid_request", "sign_in_notices must be on or off.")
	}
	if err := s.auth.SetSignInNotices(ctxOf(c), principal(c).UserID, on); err != nil {
		return err
	}
	return c.Redirect("/account?done=notices", fiber.StatusSeeOther)
}

// apiForgot is POST /auth/password/forgot: 202 whatever the address.
func (s *Server) apiForgot(c *fiber.Ctx) error {
	var req struct {
		Email string `json:"email"`
	}
	if err := decodeJSON(c.Request().Body(), &req); err != nil {
		return err
	}
	if _, err := auth.NormalizeEmail(req.Email); err == nil {
		if err := s.resetLimits(c, req.Email); err != nil {
			return err
		}
		s.auth.RequestPasswordReset(ctxOf(c), req.Email)
	}
	return c.SendStatus(fiber.StatusAccepted)
}

// apiReset is POST /auth/password/reset: the token body and refresh cookie of a new session.
func (s *Server) apiReset(c *fiber.Ctx) error {
	var req struct {
		Token       string `json:"token"`
		NewPassword string `json:"new_password"`
	}
	if err := decodeJSON(c.Request().Body(), &req); err != nil {
		return err
	}
	client, err := s.client(c, "")
	if err != nil {
		return err
	}
	issued, err := s.auth.ResetPassword(ctxOf(c), req.Token, req.NewPassword, req.NewPassword, client)
	var second *auth.SecondFactorRequired
	if errors.As(err, &second) {
		return secondFactorRequired(c, second)
	}
	if errors.Is(err, auth.ErrInvalidToken) {
		return apiError(fiber.StatusBadRequest, "invalid_token", linkProblem)
	}
	if err != nil {
		return err
	}
	s.endPreviousSession(c, issued)
	s.signedInCookies(c, client, issued, false)
	return c.JSON(s.tokenBody(issued))
}
