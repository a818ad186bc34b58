package handlers

import (
	"errors"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"gatehouse/services/auth"
	"gatehouse/services/ratelimit"
	"gatehouse/views/pages"
)

// Passkeys (WebAuthn). The page's own script (/static/passkeys.js) asks one of the options routes
// for a ceremony (a form POST carrying the CSRF token, answered with JSON: the publicKey options
// and the ceremony id), runs it in the browser, and submits the answer in an ordinary form
// (fields "ceremony" and "credential"), which is answered with redirects and pages like the
// password forms. Without JavaScript none of it shows and the password paths work as before.

// ceremonyJSON answers an options route with a begun ceremony.
func ceremonyJSON(c *fiber.Ctx, ceremony *auth.PasskeyCeremony) error {
	body := fiber.Map{"publicKey": ceremony.Options}
	if ceremony.ID != "" {
		body["ceremony"] = ceremony.ID
	}
	return c.JSON(body)
}

// ceremonyRefused answers an options route that could not begin a ceremony with JSON the script
// can show: {"error","message"}, with "field" for a bad input and "location" where the browser
// should go instead (to confirm it's you, or to sign in again). Server failures go to the error
// handler, which logs them.
func ceremonyRefused(c *fiber.Ctx, err error, location string) error {
	e := classify(err)
	if e.Status >= 500 && e.Status != fiber.StatusServiceUnavailable {
		return err
	}
	body := fiber.Map{"error": e.Code, "message": e.Message}
	if e.Field != "" {
		body["field"] = e.Field
	}
	if location != "" {
		body["location"] = location
	}
	if e.RetryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(e.RetryAfter))
	}
	return c.Status(e.Status).JSON(body)
}

// passkeyLoginOptions is POST /login/passkey/options: a sign-in ceremony for any of the person's
// passkeys (the button, or the email field's autofill). Each is a row, so they count per IP.
func (s *Server) passkeyLoginOptions(c *fiber.Ctx) error {
	if err := s.limit(c, s.limiter.Hit, ratelimit.IPKey("passkey-options-ip", s.ip(c)), s.cfg.LoginLimitIP); err != nil {
		return ceremonyRefused(c, err, "")
	}
	ceremony, err := s.auth.BeginPasskeyLogin(ctxOf(c))
	if err != nil {
		return ceremonyRefused(c, err, "")
	}
	return ceremonyJSON(c, ceremony)
}

// passkeyLogin is POST /login/passkey: fields ceremony, credential, next. Success 303s to next
// as the password form does; a refused passkey answers 401 with the sign-in form and one message.
func (s *Server) passkeyLogin(c *fiber.Ctx) error {
	next := formValue(c, "next")
	client, err := s.client(c, "")
	if err != nil {
		return err
	}
	var issued *auth.Issued
	err = s.limit(c, s.limiter.Hit, ratelimit.IPKey("password-ip", client.IP), s.cfg.LoginLimitIP)
	if err == nil {
		issued, err = s.auth.SignInWithPasskey(ctxOf(c), formValue(c, "ceremony"), []byte(formValue(c, "credential")), client)
	}
	if err != nil {
		e := classify(err)
		if e.Status >= 500 && e.Status != fiber.StatusServiceUnavailable {
			return err
		}
		page := pages.LoginPage{Frame: s.frame(c, "Sign in"), Next: next, SignupEnabled: s.cfg.SignupEnabled, Error: e.Message}
		if errors.Is(err, auth.ErrPasskeyRefused) {
			page.Error = "That passkey did not sign you in. Try again, or sign in with your password."
		}
		if e.RetryAfter > 0 {
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(e.RetryAfter))
		}
		c.Status(e.Status)
		return render(c, pages.Login(page))
	}
	s.endPreviousSession(c, issued)
	s.signedInCookies(c, client, issued, true)
	return c.Redirect(s.safeNext(next), fiber.StatusSeeOther)
}

// passkeySecondStepOptions is POST /login/second-factor/passkey/options: the passkey ceremony of
// the sign-in whose second step this browser holds (its cookie); the answer goes to
// POST /login/second-factor in the field "credential".
func (s *Server) passkeySecondStepOptions(c *fiber.Ctx) error {
	ceremony, err := s.auth.BeginSecondFactorPasskey(ctxOf(c), c.Cookies(s.cookies.secondStep))
	if errors.Is(err, auth.ErrInvalidToken) {
		s.clearCookie(c, s.cookies.secondStep)
		return ceremonyRefused(c, err, "/login?done=second-step-expired")
	}
	if err != nil {
		return ceremonyRefused(c, err, "")
	}
	return ceremonyJSON(c, ceremony)
}

// passkeyRegisterOptions is POST /account/security/passkeys/options: field name (checked now, so
// that a bad one is said before the authenticator makes a passkey). Past the re-authentication
// window it points the browser at the security page, which asks first.
func (s *Server) passkeyRegisterOptions(c *fiber.Ctx) error {
	ceremony, err := s.auth.BeginPasskeyRegistration(ctxOf(c), principal(c), formValue(c, "name"))
	if errors.Is(err, auth.ErrReauthRequired) {
		return ceremonyRefused(c, err, "/account/security")
	}
	if err != nil {
		return ceremonyRefused(c, err, "")
	}
	return ceremonyJSON(c, ceremony)
}

// passkeyRegister is POST /account/security/passkeys: fields ceremony, credential, name. With the
// account's first factor come the recovery codes, shown once; a refusal shows the security page
// again with the error next to the passkey form.
func (s *Server) passkeyRegister(c *fiber.Ctx) error {
	p, name := principal(c), formValue(c, "name")
	codes, err := s.auth.FinishPasskeyRegistration(ctxOf(c), p, formValue(c, "ceremony"), name,
		[]byte(formValue(c, "credential")), s.ip(c))
	if errors.Is(err, auth.ErrReauthRequired) {
		return c.Redirect("/account/security", fiber.StatusSeeOther)
	}
	var invalid *auth.ValidationError
	if errors.As(err, &invalid) || errors.Is(err, auth.ErrPasskeyRefused) {
		page, perr := s.securityModel(c)
		if perr != nil {
			return perr
		}
		page.PasskeyName = name
		switch {
		case invalid != nil && invalid.Field == "name":
			page.Errors["passkey_name"] = invalid.Message
		case invalid != nil:
			page.Errors["passkey"] = invalid.Message
		default:
			page.Errors["passkey"] = "Your browser's answer did not verify, so no passkey was added. Try again."
		}
		c.Status(fiber.StatusBadRequest)
		return render(c, pages.Security(*page))
	}
	if err != nil {
		return err
	}
	if codes != nil {
		return render(c, pages.RecoveryCodes(pages.RecoveryCodesPage{Frame: s.frame(c, "Save your recovery codes"), Codes: codes, First: true}))
	}
	return c.Redirect("/account/security?done=passkey-added", fiber.StatusSeeOther)
}

// passkeyReauthOptions is POST /reauth/passkey/options: a ceremony for the signed-in account's
// passkeys, whose answer the confirm page posts to the action it confirms (404 without passkeys).
func (s *Server) passkeyReauthOptions(c *fiber.Ctx) error {
	ceremony, err := s.auth.BeginPasskeyReauth(ctxOf(c), principal(c))
	if err != nil {
		return ceremonyRefused(c, err, "")
	}
	return ceremonyJSON(c, ceremony)
}
