package handlers

import "github.com/gofiber/fiber/v2"

// Passkeys (WebAuthn). The page's own script (/static/passkeys.js) asks one of the options routes
// for a ceremony, runs it in the browser, and submits the answer in a form.
//
// TODO(passkeys): being written; until then these routes answer 404.

// passkeyLoginOptions is POST /login/passkey/options.
func (s *Server) passkeyLoginOptions(c *fiber.Ctx) error { return errNotFound }

// passkeyLogin is POST /login/passkey.
func (s *Server) passkeyLogin(c *fiber.Ctx) error { return errNotFound }

// passkeySecondStepOptions is POST /login/second-factor/passkey/options.
func (s *Server) passkeySecondStepOptions(c *fiber.Ctx) error { return errNotFound }

// passkeyRegisterOptions is POST /account/security/passkeys/options.
func (s *Server) passkeyRegisterOptions(c *fiber.Ctx) error { return errNotFound }

// passkeyRegister is POST /account/security/passkeys.
func (s *Server) passkeyRegister(c *fiber.Ctx) error { return errNotFound }

// passkeyReauthOptions is POST /reauth/passkey/options.
func (s *Server) passkeyReauthOptions(c *fiber.Ctx) error { return errNotFound }
