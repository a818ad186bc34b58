package handlers

import (
	"net/http"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/filesystem"
	"github.com/gofiber/fiber/v2/middleware/recover"

	"gatehouse/static"
)

// routes lists every route of Gatehouse on one screen.
func (s *Server) routes(app *fiber.App) {
	app.Use(recover.New(), s.requestContext, s.securityHeaders, refuseEncodedBodies, s.bodyLimit)

	// Operations.
	app.Get("/healthz", healthz)
	app.Get("/readyz", s.readyz)
	if s.metrics != nil && !s.cfg.MetricsElsewhere {
		app.Get("/metrics", adaptor.HTTPHandler(s.metrics.Handler()))
	}
	app.Get("/.well-known/jwks.json", s.jwks)
	app.Use("/static", filesystem.New(filesystem.Config{Root: http.FS(static.FS), MaxAge: 3600}))

	// App API: refresh cookie under /auth/, bearer tokens under /api/.
	authAPI := app.Group("/auth", noStore, s.authOrigin)
	authAPI.Post("/login", s.apiLogin)
	authAPI.Post("/refresh", s.apiRefresh)
	authAPI.Post("/logout", s.apiLogout)
	authAPI.Post("/password/forgot", s.apiForgot)
	authAPI.Post("/password/reset", s.apiReset)
	authAPI.Post("/second-factor", s.apiSecondFactor)

	api := app.Group("/api", noStore, s.bearer)
	api.Get("/me", s.apiMe)
	api.Get("/sessions", s.apiSessions)
	api.Post("/sessions/revoke-others", s.sessionActions, s.apiRevokeOthers)
	api.Post("/sessions/revoke-all", s.sessionActions, s.apiRevokeAll)
	api.Delete("/sessions/:sid", s.sessionActions, s.apiDeleteSession)

	// Pages: CSRF on every form; the signed-in ones behind pageSession, whose session the CSRF
	// token names; sign-outs behind the per-session action limit.
	web := func(h fiber.Handler) []fiber.Handler { return []fiber.Handler{noStore, s.csrfCookie, s.csrfCheck, h} }
	signedIn := func(h fiber.Handler) []fiber.Handler {
		return []fiber.Handler{noStore, s.csrfCookie, s.pageSession, s.csrfCheck, h}
	}
	signOut := func(h fiber.Handler) []fiber.Handler {
		return []fiber.Handler{noStore, s.csrfCookie, s.pageSession, s.csrfCheck, s.sessionActions, h}
	}
	app.Get("/", web(s.home)...)
	app.Get("/login", web(s.loginPage)...)
	app.Post("/login", web(s.loginSubmit)...)
	app.Get("/signup", web(s.signupPage)...)
	app.Post("/signup", web(s.signupSubmit)...)
	app.Post("/logout", signedIn(s.logout)...)
	app.Get("/login/second-factor", web(s.secondFactorPage)...)
	app.Post("/login/second-factor", web(s.secondFactorSubmit)...)
	app.Post("/login/second-factor/passkey/options", web(s.passkeySecondStepOptions)...)
	app.Post("/login/passkey/options", web(s.passkeyLoginOptions)...)
	app.Post("/login/passkey", web(s.passkeyLogin)...)
	app.Get("/password/forgot", web(s.forgotPage)...)
	app.Post("/password/forgot", web(s.forgotSubmit)...)
	app.Get("/password/reset", web(s.resetPage)...)
	app.Post("/password/reset", web(s.resetSubmit)...)
	app.Get("/verify-email", web(s.linkPage(verifyFlow))...)
	app.Post("/verify-email", web(s.linkSubmit(verifyFlow))...)
	app.Get("/account/email/confirm", web(s.linkPage(confirmEmailFlow))...)
	app.Post("/account/email/confirm", web(s.linkSubmit(confirmEmailFlow))...)
	app.Get("/account/email/undo", web(s.linkPage(undoEmailFlow))...)
	app.Post("/account/email/undo", web(s.linkSubmit(undoEmailFlow))...)
	app.Get("/devices", signedIn(s.devicesPage)...)
	app.Post("/devices/signout-others", signOut(s.signoutOthers)...)
	app.Get("/devices/signout-everywhere", signedIn(s.confirmSignoutEverywhere)...)
	app.Post("/devices/signout-everywhere", signOut(s.signoutEverywhere)...)
	app.Get("/devices/:sid", signedIn(s.sessionPage)...)
	app.Post("/devices/:sid/rename", signedIn(s.renameDevice)...)
	app.Post("/devices/:sid/signout", signOut(s.signoutDevice)...)
	app.Get("/account", signedIn(s.accountPage)...)
	app.Get("/account/activity", signedIn(s.activityPage)...)
	app.Post("/account/name", signedIn(s.setDisplayName)...)
	app.Post("/account/password", signedIn(s.changePassword)...)
	app.Post("/account/email", signedIn(s.changeEmail)...)
	app.Post("/account/verify-email/resend", signedIn(s.resendVerification)...)
	app.Post("/account/notifications", signedIn(s.setNotices)...)
	app.Get("/account/export", signedIn(s.exportAccount)...)
	app.Post("/account/delete", signOut(s.deleteAccount)...)
	app.Get("/account/security", signedIn(s.securityPage)...)
	app.Post("/account/security", signedIn(s.securityConfirm)...)
	app.Post("/account/security/totp", signedIn(s.beginTOTP)...)
	app.Post("/account/security/totp/confirm", signedIn(s.confirmTOTP)...)
	app.Post("/account/security/recovery-codes", signedIn(s.newRecoveryCodes)...)
	app.Post("/account/security/factors/:id/rename", signedIn(s.renameFactor)...)
	app.Post("/account/security/factors/:id/delete", signedIn(s.removeFactor)...)
	app.Post("/account/security/passkeys/options", signedIn(s.passkeyRegisterOptions)...)
	app.Post("/account/security/passkeys", signedIn(s.passkeyRegister)...)
	app.Post("/reauth/passkey/options", signedIn(s.passkeyReauthOptions)...)

	app.Use(func(c *fiber.Ctx) error { return errNotFound })
}
