package handlers

import (
	"errors"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"

	"gatehouse/services/auth"
	"gatehouse/services/ratelimit"
	"gatehouse/views/pages"
)

// The second step of a page sign-in: the challenge of the sign-in waits in an HttpOnly cookie
// (s.cookies.secondStep) for ChallengeTTL, so that only this browser can finish it.

// toSecondStep answers a correct password on an account with a second factor: it keeps the
// challenge in the browser and sends it on to the second step.
func (s *Server) toSecondStep(c *fiber.Ctx, required *auth.SecondFactorRequired, next string) error {
	s.setCookie(c, s.cookies.secondStep, required.Challenge, auth.ChallengeTTL)
	target := "/login/second-factor"
	if next != "" {
		target += "?next=" + url.QueryEscape(next)
	}
	return c.Redirect(target, fiber.StatusSeeOther)
}

// secondStepExpired sends a browser whose second step is gone (expired, used, too many wrong
// codes, or the password changed since) back to sign in, saying why.
func (s *Server) secondStepExpired(c *fiber.Ctx) error {
	s.clearCookie(c, s.cookies.secondStep)
	return c.Redirect("/login?done=second-step-expired", fiber.StatusSeeOther)
}

// secondFactorPage is GET /login/second-factor.
func (s *Server) secondFactorPage(c *fiber.Ctx) error {
	challenge := c.Cookies(s.cookies.secondStep)
	pending, err := s.auth.PendingSecondStep(ctxOf(c), challenge)
	if errors.Is(err, auth.ErrInvalidToken) {
		return s.secondStepExpired(c)
	}
	if err != nil {
		return err
	}
	return render(c, pages.SecondFactor(s.secondFactorModel(c, pending, c.Query("next"))))
}

func (s *Server) secondFactorModel(c *fiber.Ctx, pending *auth.PendingSignIn, next string) pages.SecondFactorPage {
	return pages.SecondFactorPage{Frame: s.frame(c, "Confirm it's you"), Next: next, TOTP: pending.TOTP,
		Passkeys: pending.Passkeys, RecoveryCodes: pending.RecoveryCodes}
}

// secondFactorSubmit is POST /login/second-factor: the field "code" (a TOTP or recovery code), or
// "credential" (a passkey's answer, which the page's script fills in).
func (s *Server) secondFactorSubmit(c *fiber.Ctx) error {
	challenge, next := c.Cookies(s.cookies.secondStep), formValue(c, "next")
	pending, err := s.auth.PendingSecondStep(ctxOf(c), challenge)
	if errors.Is(err, auth.ErrInvalidToken) {
		return s.secondStepExpired(c)
	}
	if err != nil {
		return err
	}
	client, err := s.client(c, "")
	if err != nil {
		return err
	}
	credential, code := formValue(c, "credential"), formValue(c, "code")
	if credential == "" && strings.TrimSpace(code) == "" {
		page := s.secondFactorModel(c, pending, next)
		page.Error = "Enter the code your authenticator app shows, or one of your recovery codes."
		c.Status(fiber.StatusBadRequest)
		return render(c, pages.SecondFactor(page))
	}
	// A passkey's answer is checked under the same limits as a code (as on the re-authentication
	// prompt): a refused one counts, per client IP and per account.
	var issued *auth.Issued
	err = s.checkCode(c, pending.UserID, func() error {
		var err error
		if credential != "" {
			issued, err = s.auth.CompleteSecondFactorWithPasskey(ctxOf(c), challenge, []byte(credential), client)
		} else {
			issued, err = s.auth.CompleteSecondFactor(ctxOf(c), challenge, code, client)
		}
		return err
	})
	switch {
	case errors.Is(err, auth.ErrInvalidToken):
		return s.secondStepExpired(c)
	case errors.Is(err, auth.ErrInvalidCode), errors.Is(err, auth.ErrPasskeyRefused):
		page := s.secondFactorModel(c, pending, next)
		page.Error = "That code is not right. Try the newest code your app shows, or a recovery code."
		if errors.Is(err, auth.ErrPasskeyRefused) {
			page.Error = "That passkey did not confirm it's you. Try again, or use a code."
		}
		c.Status(fiber.StatusUnauthorized)
		return render(c, pages.SecondFactor(page))
	case err != nil:
		return err
	}
	s.clearCookie(c, s.cookies.secondStep)
	s.signedInCookies(c, client, issued, true)
	s.endPreviousSession(c, issued)
	return c.Redirect(s.safeNext(next), fiber.StatusSeeOther)
}

// apiSecondFactor is POST /auth/second-factor: {"challenge","code"} finishes an app's sign-in.
func (s *Server) apiSecondFactor(c *fiber.Ctx) error {
	var req struct {
		Challenge  string `json:"challenge"`
		Code       string `json:"code"`
		DeviceName string `json:"device_name"`
	}
	if err := decodeJSON(c.Request().Body(), &req); err != nil {
		return err
	}
	if req.Challenge == "" || req.Code == "" {
		return apiError(fiber.StatusBadRequest, "invalid_request", "Send the challenge from the sign-in and the code.")
	}
	pending, err := s.auth.PendingSecondStep(ctxOf(c), req.Challenge)
	if err != nil {
		return err
	}
	client, err := s.client(c, req.DeviceName)
	if err != nil {
		return err
	}
	var issued *auth.Issued
	err = s.checkCode(c, pending.UserID, func() error {
		var err error
		issued, err = s.auth.CompleteSecondFactor(ctxOf(c), req.Challenge, req.Code, client)
		return err
	})
	if err != nil {
		return err
	}
	s.endPreviousSession(c, issued) // as a sign-in with the password alone does (signIn)
	s.signedInCookies(c, client, issued, false)
	return c.JSON(s.tokenBody(issued))
}

// secondFactorRequired is the app API's answer to a correct password on an account with a second
// factor: 401 with the challenge that POST /auth/second-factor takes.
func secondFactorRequired(c *fiber.Ctx, required *auth.SecondFactorRequired) error {
	return c.Status(fiber.StatusUnauthorized).JSON(fiber.Map{
		"error": "second_factor_required", "challenge": required.Challenge,
		"message": "Enter the code from your authenticator app, or a recovery code, to finish signing in.",
	})
}

// checkCode runs one second-factor code check under the limits of password checks: per client IP,
// and per account (counted apart from passwords, by user id, since the second step knows no email).
func (s *Server) checkCode(c *fiber.Ctx, userID string, check func() error) error {
	return s.guardedCheck(c, ratelimit.Key("code-account", userID), check)
}
