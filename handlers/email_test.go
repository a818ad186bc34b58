package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/handlers"
	"gatehouse/models/testdb"
	"gatehouse/services/auth"
	"gatehouse/services/ratelimit"
)

// Verified addresses, email changes and the notices a person gets, over real SMTP.

// steps runs the steps of one story as subtests, stopping at the first that fails, with the
// story's clients pointed at the running step.
type steps struct {
	t       *testing.T
	clients []*client
}

func (s *steps) run(name string, fn func(t *testing.T)) {
	s.t.Helper()
	point := func(t *testing.T) {
		for _, c := range s.clients {
			c.t = t
		}
	}
	ok := s.t.Run(name, func(t *testing.T) { point(t); fn(t) })
	point(s.t)
	if !ok {
		s.t.FailNow()
	}
}

// use adds clients to the story.
func (s *steps) use(cs ...*client) { s.clients = append(s.clients, cs...) }

// verify uses a verification link on its page, in a browser that need not be signed in.
func (c *client) verify(link string) *response {
	return c.useLink(link, "/verify-email")
}

// useLink posts the token of link to action, from the page the link opens, or, when that page
// has no form (the link no longer works), with the CSRF token of another page.
func (c *client) useLink(link, action string) *response {
	c.t.Helper()
	from := link
	if res := c.get(link); res.StatusCode != http.StatusOK {
		from = "/password/forgot"
	}
	return c.page(from, action, url.Values{"token": {tokenOf(c.t, link)}})
}

// expectLinkButton: the page a link opens explains itself and has one button that posts the
// link's token to action; it uses nothing.
func expectLinkButton(t *testing.T, res *response, heading, action, button, link string) {
	t.Helper()
	doc := expectPage(t, res, http.StatusOK, heading)
	form := doc.Find(`main form[method="post"][action="` + action + `"]`)
	if form.Length() != 1 {
		t.Fatalf("no form posting to %s", action)
	}
	if v, _ := form.Find(`input[type="hidden"][name="token"]`).Attr("value"); v == "" || v != tokenOf(t, link) {
		t.Fatalf("the form carries token %q, want the link's", v)
	}
	if got := text(form.Find(`button[type="submit"]`)); got != button {
		t.Fatalf("button %q, want %q", got, button)
	}
}

// expectDone: a link's page after its button, saying what happened.
func expectDone(t *testing.T, res *response, status int, heading, done string) {
	t.Helper()
	doc := expectPage(t, res, status, heading)
	if got := text(doc.Find(`main [role="status"]`)); got != done {
		t.Fatalf("the page says %q, want %q", got, done)
	}
}

// apiLogin signs in through the app API with password and returns the response.
func (c *client) apiLogin(email, password string) *response {
	return c.postJSON("/auth/login", map[string]string{"email": email, "password": password}, nil)
}

// me is GET /api/me with access, which must answer 200.
func (c *client) me(access string) map[string]any {
	c.t.Helper()
	res := c.getBearer("/api/me", access)
	if res.StatusCode != http.StatusOK {
		c.t.Fatalf("/api/me: %d %s", res.StatusCode, res.body)
	}
	return res.JSON(c.t)
}

// refresh rotates the client's refresh cookie and returns the new access token.
func (c *client) refresh() string {
	c.t.Helper()
	res := c.do(http.MethodPost, "/auth/refresh", nil, nil)
	if res.StatusCode != http.StatusOK {
		c.t.Fatalf("refresh: %d %s", res.StatusCode, res.body)
	}
	return res.JSON(c.t)["access_token"].(string)
}

func (ts *testServer) emailVerified(t *testing.T, email string) bool {
	t.Helper()
	return ts.db.Count(t, "SELECT COUNT(*) FROM users WHERE email = ? AND email_verified_at IS NOT NULL", email) == 1
}

func TestEmailVerification(t *testing.T) {
	const dee = "dee@example.com"
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts, mb := newMailServer(t, db, nil)
		browser, app := ts.browser(t, firefoxMac), ts.newClient(t)
		s := &steps{t: t}
		s.use(browser, app)
		var link, access string

		s.run("sign-up sends a link, and only that", func(t *testing.T) {
			expectRedirect(t, browser.signUp(" Dee@Example.com"), "/devices")
			link = mb.linkTo(t, mb.expectOne(t, dee, subjectVerify), "/verify-email") // the first sign-in: no notice
			mb.expectAllTaken(t)
			doc := expectPage(t, browser.get("/account"), http.StatusOK, "Account")
			if text(doc.Find("main .badge")) != "not verified" || doc.Find(`main form[action="/account/verify-email/resend"]`).Length() != 1 {
				t.Fatal("the account page does not ask to verify the address, with a resend button")
			}
			res := app.apiLogin(dee, testPassword)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("login: %d %s", res.StatusCode, res.body)
			}
			access = res.JSON(t)["access_token"].(string)
			if c := claims(t, access); c["email_verified"] != false || !equalStrings(c["amr"], "pwd") {
				t.Fatalf("claims %v, want email_verified false and amr [pwd]", c)
			}
			if me := app.me(access); me["email_verified"] != false {
				t.Fatalf("/api/me %v, want email_verified false", me)
			}
			mb.expectOne(t, dee, subjectNewSignIn) // the app is a second device
		})

		s.run("opening the link shows a button and uses nothing", func(t *testing.T) {
			for range 2 {
				expectLinkButton(t, ts.newClient(t).get(link), "Verify your email address", "/verify-email", "Verify my address", link)
			}
			if ts.emailVerified(t, dee) {
				t.Fatal("opening the link verified the address")
			}
		})

		s.run("the button verifies the address", func(t *testing.T) {
			elsewhere := ts.newClient(t) // the mail is read on a device that is not signed in
			expectDone(t, elsewhere.verify(link), http.StatusOK, "Verify your email address", "Your email address is verified. Thank you.")
			if !ts.emailVerified(t, dee) {
				t.Fatal("the address is not marked verified")
			}
			if me := app.me(access); me["email_verified"] != true {
				t.Fatalf("/api/me with the token issued before: %v, want email_verified true", me)
			}
			if c := claims(t, app.refresh()); c["email_verified"] != true {
				t.Fatalf("a new access token: claims %v, want email_verified true", c)
			}
			doc := expectPage(t, browser.get("/account"), http.StatusOK, "Account")
			if doc.Find("main .badge").Length() != 0 || doc.Find(`main form[action="/account/verify-email/resend"]`).Length() != 0 {
				t.Fatal("the account page still asks to verify")
			}
			if n := db.Count(t, "SELECT COUNT(*) FROM security_events WHERE kind = 'email_verified'"); n != 1 {
				t.Fatalf("%d email_verified events, want 1", n)
			}
		})

		s.run("the link works once", func(t *testing.T) {
			before := ts.accounts(t)
			c := ts.newClient(t)
			expectLinkRefused(t, c.get(link))
			expectLinkRefused(t, c.page("/login", "/verify-email", url.Values{"token": {tokenOf(t, link)}}))
			if after := ts.accounts(t); after != before {
				t.Fatalf("a used link changed something:\n%s\nwas\n%s", after, before)
			}
		})

		s.run("a verified address gets no more links", func(t *testing.T) {
			expectRedirect(t, browser.page("/account", "/account/verify-email/resend", nil), "/account?done=verify-sent")
			mb.expectNone(t, dee)
		})

		s.run("a resent link supersedes the first", func(t *testing.T) {
			eli := ts.browser(t, chromeAndroid)
			expectRedirect(t, eli.signUp("eli@example.com"), "/devices")
			first := mb.linkTo(t, mb.expectOne(t, "eli@example.com", subjectVerify), "/verify-email")
			expectRedirect(t, eli.page("/account", "/account/verify-email/resend", nil), "/account?done=verify-sent")
			second := mb.linkTo(t, mb.expectOne(t, "eli@example.com", subjectVerify), "/verify-email")
			expectLinkRefused(t, ts.newClient(t).get(first))
			expectLinkRefused(t, ts.newClient(t).verify(first))
			if ts.emailVerified(t, "eli@example.com") {
				t.Fatal("a superseded link verified the address")
			}
			expectDone(t, ts.newClient(t).verify(second), http.StatusOK, "Verify your email address", "Your email address is verified. Thank you.")
			if !ts.emailVerified(t, "eli@example.com") {
				t.Fatal("the newest link did not verify the address")
			}
			mb.expectAllTaken(t)
		})
	})
}

func equalStrings(v any, want ...string) bool {
	list, ok := v.([]any)
	if !ok || len(list) != len(want) {
		return false
	}
	for i := range list {
		if list[i] != want[i] {
			return false
		}
	}
	return true
}

// TestEmailVerificationRequired: under GATEHOUSE_EMAIL_VERIFICATION=required nobody signs in
// before the address is verified; each try sends a new link.
func TestEmailVerificationRequired(t *testing.T) {
	const fay = "fay@example.com"
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts, mb := newMailServer(t, db, func(c *auth.Config) { c.EmailVerification = auth.VerificationRequired })
		browser, app := ts.browser(t, firefoxMac), ts.newClient(t)
		s := &steps{t: t}
		s.use(browser, app)
		var links []string
		noSession := func(t *testing.T) {
			t.Helper()
			if n := db.Count(t, "SELECT COUNT(*) FROM device_sessions"); n != 0 {
				t.Fatalf("%d device sessions before the address is verified, want none", n)
			}
		}

		s.run("sign-up asks to check the mail, and signs nobody in", func(t *testing.T) {
			res := browser.signUp(fay)
			expectDone(t, res, http.StatusOK, "Check your email",
				"Your account is created. We sent a link to "+fay+": open it to verify your address, then sign in.")
			if res.cookie("gh_refresh") != nil || res.cookie("gh_access") != nil {
				t.Fatal("sign-up set session cookies")
			}
			expectSignedOut(t, browser)
			noSession(t)
			links = append(links, mb.linkTo(t, mb.expectOne(t, fay, subjectVerify), "/verify-email"))
		})

		s.run("sign-in is refused, and a new link sent", func(t *testing.T) {
			browser.get("/login")
			res := browser.postForm("/login", url.Values{"email": {fay}, "password": {testPassword}})
			doc := expectPage(t, res, http.StatusForbidden, "Sign in")
			if alert := text(doc.Find(`main [role="alert"]`)); !strings.Contains(alert, "Verify your email address first: we have sent a new link to it.") {
				t.Fatalf("the sign-in page says %q", alert)
			}
			if res.cookie("gh_refresh") != nil {
				t.Fatal("a refused sign-in set a refresh cookie")
			}
			links = append(links, mb.linkTo(t, mb.expectOne(t, fay, subjectVerify), "/verify-email"))

			api := app.apiLogin(fay, testPassword)
			if api.StatusCode != http.StatusForbidden || api.JSON(t)["error"] != "email_not_verified" || api.cookie("gh_refresh") != nil {
				t.Fatalf("API sign-in: %d %s", api.StatusCode, api.body)
			}
			links = append(links, mb.linkTo(t, mb.expectOne(t, fay, subjectVerify), "/verify-email"))
			noSession(t)
		})

		s.run("a wrong password tells nothing and sends nothing", func(t *testing.T) {
			api := app.apiLogin(fay, "not the password")
			if api.StatusCode != http.StatusUnauthorized || api.JSON(t)["error"] != "invalid_credentials" {
				t.Fatalf("wrong password: %d %s", api.StatusCode, api.body)
			}
			mb.expectNone(t, fay)
		})

		s.run("only the newest link verifies", func(t *testing.T) {
			for _, old := range links[:len(links)-1] {
				expectLinkRefused(t, ts.newClient(t).verify(old))
			}
			noSession(t)
			expectDone(t, ts.newClient(t).verify(links[len(links)-1]), http.StatusOK, "Verify your email address", "Your email address is verified. Thank you.")
		})

		s.run("a reset link proves the address too", func(t *testing.T) {
			if _, err := ts.svc.CreateUser(t.Context(), "gus@example.com", "Gus", testPassword); err != nil {
				t.Fatal(err)
			}
			if res := ts.newClient(t).apiLogin("gus@example.com", testPassword); res.StatusCode != http.StatusForbidden {
				t.Fatalf("an unverified account signed in: %d", res.StatusCode)
			}
			mb.expectOne(t, "gus@example.com", subjectVerify)
			gus := ts.browser(t, chromeAndroid)
			gus.forgot("gus@example.com")
			link := mb.linkTo(t, mb.expectOne(t, "gus@example.com", subjectReset), "/password/reset")
			expectRedirect(t, gus.page(link, "/password/reset", url.Values{"token": {tokenOf(t, link)},
				"new_password": {newPassword}, "new_password_confirm": {newPassword}}), "/devices?done=password-reset")
			expectSignedIn(t, gus)
			if !ts.emailVerified(t, "gus@example.com") {
				t.Fatal("the reset did not mark the address verified")
			}
			mb.expect(t, "gus@example.com", subjectPasswordChange) // its first sign-in: no notice
		})

		s.run("then sign-in works, the account's first: no notice", func(t *testing.T) {
			browser.pageSignIn(fay)
			expectSignedIn(t, browser)
			mb.expectNone(t, fay)
			res := app.apiLogin(fay, testPassword)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("API sign-in: %d %s", res.StatusCode, res.body)
			}
			if c := claims(t, res.JSON(t)["access_token"].(string)); c["email_verified"] != true {
				t.Fatalf("claims %v, want email_verified true", c)
			}
			mb.expectOne(t, fay, subjectNewSignIn) // the app is a second device
			mb.expectAllTaken(t)
		})
	})
}

// TestEmailVerificationOff: with GATEHOUSE_EMAIL_VERIFICATION=off no link is sent, and nobody
// is asked to verify.
func TestEmailVerificationOff(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts, mb := newMailServer(t, db, func(c *auth.Config) { c.EmailVerification = auth.VerificationOff })
		b := ts.browser(t, firefoxMac)
		expectRedirect(t, b.signUp("hal@example.com"), "/devices")
		doc := expectPage(t, b.get("/account"), http.StatusOK, "Account")
		if doc.Find("main .badge").Length() != 0 || doc.Find(`main form[action="/account/verify-email/resend"]`).Length() != 0 {
			t.Fatal("the account page asks to verify with verification off")
		}
		expectRedirect(t, b.page("/account", "/account/verify-email/resend", nil), "/account?done=verify-sent")
		if n := mb.total(t); n != 0 {
			t.Fatalf("%d messages sent with verification off", n)
		}
	})
}

// changeEmail posts the change-email form of the account page.
func (c *client) changeEmail(newEmail, password string) *response {
	return c.page("/account", "/account/email", url.Values{"new_email": {newEmail}, "current_password": {password}})
}

func TestEmailChange(t *testing.T) {
	const ann, annNew = "ann@example.com", "ann.new@example.com"
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts, mb := newMailServer(t, db, nil, func(c *handlers.Config) {
			c.LoginLimitAccount = ratelimit.Rate{N: 3, Per: 15 * time.Minute}
		})
		ts.createUser(t, ann)
		ts.createUser(t, "bob@example.com")
		laptop, phone := ts.browser(t, firefoxMac), ts.newClient(t)
		laptop.pageSignIn(ann)
		access := phone.apiSignIn(ann)
		mb.expectOne(t, ann, subjectNewSignIn)
		s := &steps{t: t}
		s.use(laptop, phone)
		var confirm, undo, resetLink string

		s.run("a wrong password is refused and counted", func(t *testing.T) {
			failed := db.Count(t, "SELECT COUNT(*) FROM security_events WHERE kind = 'password_check_failed'")
			for i := range 3 {
				res := laptop.changeEmail(annNew, "not my password")
				doc := expectPage(t, res, http.StatusBadRequest, "Account")
				if msg := fieldError(t, doc.Selection, "#field-email-current_password"); msg != "That is not your current password." {
					t.Fatalf("attempt %d: the password field says %q", i, msg)
				}
				if v, _ := doc.Find(`input[name="new_email"]`).Attr("value"); v != annNew {
					t.Fatalf("the new address was not kept: %q", v)
				}
			}
			if n := db.Count(t, "SELECT COUNT(*) FROM security_events WHERE kind = 'password_check_failed'"); n != failed+3 {
				t.Fatalf("%d failed password checks recorded, want %d", n, failed+3)
			}
			// Counted against the account's password limit: now even the right one waits.
			expectPage(t, laptop.changeEmail(annNew, testPassword), http.StatusTooManyRequests, "Too many attempts")
			mb.expectNone(t, annNew)
			mb.expectNone(t, ann)
			ts.clock.Advance(15 * time.Minute)
			access = phone.refresh()
		})

		s.run("a taken, unchanged or malformed address is refused", func(t *testing.T) {
			before := ts.accounts(t)
			cases := []struct {
				email  string
				status int
				msg    string
			}{
				{"BOB@example.com", http.StatusConflict, "Another account uses that address."},
				{"Ann@Example.com", http.StatusBadRequest, "That is already your address."},
				{"not-an-address", http.StatusBadRequest, "Enter a valid email address, like name@example.com."},
			}
			for _, tc := range cases {
				doc := expectPage(t, laptop.changeEmail(tc.email, testPassword), tc.status, "Account")
				if msg := fieldError(t, doc.Selection, `input[name="new_email"]`); msg != tc.msg {
					t.Fatalf("%s: the field says %q, want %q", tc.email, msg, tc.msg)
				}
			}
			// Both fields wrong: both errors at once, in the form's summary, before any password
			// check (an empty one is not a guess: no failed check is recorded).
			failed := ts.rows(t, "SELECT CAST(COUNT(*) AS TEXT) FROM security_events WHERE kind = 'password_check_failed'")
			doc := expectPage(t, laptop.changeEmail("not-an-address", ""), http.StatusBadRequest, "Account")
			if msg := fieldError(t, doc.Selection, `input[name="new_email"]`); msg != "Enter a valid email address, like name@example.com." {
				t.Fatalf("the address field says %q", msg)
			}
			if msg := fieldError(t, doc.Selection, "#field-email-current_password"); msg != "Enter your current password." {
				t.Fatalf("the password field says %q", msg)
			}
			if n := doc.Find(`form[action="/account/email"] .error-summary-list li`).Length(); n != 2 {
				t.Fatalf("the form's error summary lists %d errors, want 2", n)
			}
			if now := ts.rows(t, "SELECT CAST(COUNT(*) AS TEXT) FROM security_events WHERE kind = 'password_check_failed'"); now != failed {
				t.Fatalf("an empty password was counted as a failed check (%s, was %s)", now, failed)
			}
			if after := ts.accounts(t); after != before {
				t.Fatalf("a refused change changed something:\n%s\nwas\n%s", after, before)
			}
			mb.expectNone(t, "bob@example.com")
			mb.expectNone(t, ann)
		})

		s.run("the confirmation link goes to the new address", func(t *testing.T) {
			ts.newClient(t).forgot(ann) // a reset link to the old address, before the change
			resetLink = mb.linkTo(t, mb.expectOne(t, ann, subjectReset), "/password/reset")

			expectRedirect(t, laptop.changeEmail(" Ann.New@Example.com", testPassword), "/account?done=email-sent")
			msg := mb.expectOne(t, annNew, subjectConfirmChange)
			confirm = mb.linkTo(t, msg, "/account/email/confirm")
			mb.expectNone(t, ann)
			before := ts.accounts(t)
			for range 2 {
				expectLinkButton(t, ts.newClient(t).get(confirm), "Confirm your new email address", "/account/email/confirm", "Use this address", confirm)
			}
			if after := ts.accounts(t); after != before || !strings.Contains(after, ann+" ") {
				t.Fatalf("the address changed before the link was used:\n%s", after)
			}
		})

		s.run("confirming changes the address and tells the old one, with an undo link", func(t *testing.T) {
			expectDone(t, laptop.useLink(confirm, "/account/email/confirm"), http.StatusOK, "Confirm your new email address", "Your account now uses this email address.")
			if !ts.emailVerified(t, annNew) || db.Count(t, "SELECT COUNT(*) FROM users WHERE email = ?", ann) != 0 {
				t.Fatalf("the account's address was not changed to a verified %s:\n%s", annNew, ts.accounts(t))
			}
			if me := phone.me(access); me["email"] != annNew {
				t.Fatalf("/api/me: %v", me)
			}
			expectSignedIn(t, laptop) // confirming signs nobody out
			notice := mb.expectOne(t, ann, subjectEmailChanged)
			if !strings.Contains(notice.Text, "changed from "+ann+" to "+annNew) {
				t.Fatalf("the notice does not name both addresses:\n%s", notice.Text)
			}
			undo = mb.linkTo(t, notice, "/account/email/undo")
			mb.expectNone(t, annNew)

			if res := phone.apiLogin(ann, testPassword); res.StatusCode != http.StatusUnauthorized {
				t.Fatalf("the old address still signs in: %d", res.StatusCode)
			}
			if res := phone.apiLogin(annNew, testPassword); res.StatusCode != http.StatusOK {
				t.Fatalf("the new address does not sign in: %d %s", res.StatusCode, res.body)
			}
			expectLinkRefused(t, ts.newClient(t).useLink(confirm, "/account/email/confirm"))
		})

		s.run("a reset link sent to the old address no longer works", func(t *testing.T) {
			before := ts.accounts(t)
			c := ts.newClient(t)
			expectLinkRefused(t, c.reset(tokenOf(t, resetLink), "yet another passphrase"))
			if after := ts.accounts(t); after != before {
				t.Fatalf("changed something:\n%s\nwas\n%s", after, before)
			}
			expectLinkRefused(t, c.get(resetLink))
		})

		s.run("undo restores the old address and signs everyone out", func(t *testing.T) {
			version := ts.tokenVersion(t, annNew)
			for range 2 {
				expectLinkButton(t, ts.newClient(t).get(undo), "Undo the email change", "/account/email/undo", "Undo the change and sign out everywhere", undo)
			}
			if db.Count(t, "SELECT COUNT(*) FROM users WHERE email = ?", annNew) != 1 {
				t.Fatal("opening the undo link changed the address")
			}
			reader := ts.newClient(t) // the old address's mail, read anywhere
			expectDone(t, reader.useLink(undo, "/account/email/undo"), http.StatusOK, "Undo the email change",
				"Your old address is back and every device is signed out. Reset your password to be safe.")
			if !ts.emailVerified(t, ann) || db.Count(t, "SELECT COUNT(*) FROM users WHERE email = ?", annNew) != 0 {
				t.Fatalf("the old address is not back:\n%s", ts.accounts(t))
			}
			if ts.tokenVersion(t, ann) == version {
				t.Fatal("token_version was not bumped")
			}
			expectSignedOut(t, laptop)
			if got := phone.refreshStatus(); got != http.StatusUnauthorized {
				t.Fatalf("the app still refreshes: %d", got)
			}
			if res := phone.getBearer("/api/me", access); res.StatusCode != http.StatusUnauthorized {
				t.Fatalf("an access token from before the undo: %d", res.StatusCode)
			}
			if n := db.Count(t, "SELECT COUNT(*) FROM device_sessions WHERE revoked_at IS NULL"); n != 0 {
				t.Fatalf("%d sessions still live", n)
			}
			if n := db.Count(t, "SELECT COUNT(*) FROM security_events WHERE kind = 'email_change_undone'"); n != 1 {
				t.Fatalf("%d email_change_undone events, want 1", n)
			}
			if res := phone.apiLogin(annNew, testPassword); res.StatusCode != http.StatusUnauthorized {
				t.Fatalf("the new address still signs in: %d", res.StatusCode)
			}
			if res := phone.apiLogin(ann, testPassword); res.StatusCode != http.StatusOK {
				t.Fatalf("the old address does not sign in: %d %s", res.StatusCode, res.body)
			}
			expectLinkRefused(t, ts.newClient(t).get(undo))
			expectLinkRefused(t, ts.newClient(t).useLink(undo, "/account/email/undo"))
			mb.expectNone(t, ann)
			mb.expectNone(t, annNew)
			mb.expectAllTaken(t)
		})
	})
}

// TestEmailChangeKeepsAddressesUnique: an address that another account took while a change was
// pending is refused when the link is used, in either direction.
func TestEmailChangeKeepsAddressesUnique(t *testing.T) {
	const ann = "ann@example.com"
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts, mb := newMailServer(t, db, nil)
		ts.createUser(t, ann)
		laptop := ts.browser(t, firefoxMac)
		laptop.pageSignIn(ann)
		s := &steps{t: t}
		s.use(laptop)
		unique := func(t *testing.T) {
			t.Helper()
			if dup := ts.rows(t, "SELECT email FROM users GROUP BY email HAVING COUNT(*) > 1"); dup != "" {
				t.Fatalf("addresses held twice: %s", dup)
			}
		}

		s.run("taken before the confirmation", func(t *testing.T) {
			expectRedirect(t, laptop.changeEmail("dee@example.com", testPassword), "/account?done=email-sent")
			confirm := mb.linkTo(t, mb.expectOne(t, "dee@example.com", subjectConfirmChange), "/account/email/confirm")
			expectRedirect(t, ts.newClient(t).signUp("dee@example.com"), "/devices") // the address is free until then
			mb.expectOne(t, "dee@example.com", subjectVerify)
			before := ts.accounts(t)
			doc := expectPage(t, laptop.useLink(confirm, "/account/email/confirm"), http.StatusConflict, "This link no longer works")
			if alert := text(doc.Find(`main [role="alert"]`)); !strings.Contains(alert, "Another account uses that address now") {
				t.Fatalf("the page says %q", alert)
			}
			if after := ts.accounts(t); after != before {
				t.Fatalf("changed something:\n%s\nwas\n%s", after, before)
			}
			unique(t)
			mb.expectNone(t, ann)
		})

		s.run("taken before the undo", func(t *testing.T) {
			expectRedirect(t, laptop.changeEmail("ann2@example.com", testPassword), "/account?done=email-sent")
			confirm := mb.linkTo(t, mb.expectOne(t, "ann2@example.com", subjectConfirmChange), "/account/email/confirm")
			expectDone(t, laptop.useLink(confirm, "/account/email/confirm"), http.StatusOK, "Confirm your new email address", "Your account now uses this email address.")
			undo := mb.linkTo(t, mb.expectOne(t, ann, subjectEmailChanged), "/account/email/undo")
			expectRedirect(t, ts.newClient(t).signUp(ann), "/devices") // the old address is free now
			mb.expectOne(t, ann, subjectVerify)
			before := ts.accounts(t)
			expectPage(t, ts.newClient(t).useLink(undo, "/account/email/undo"), http.StatusConflict, "This link no longer works")
			if after := ts.accounts(t); after != before {
				t.Fatalf("changed something:\n%s\nwas\n%s", after, before)
			}
			unique(t)
			expectSignedIn(t, laptop)
			mb.expectAllTaken(t)
		})
	})
}

// TestUndoSurvivesALaterChange: whoever changes the address twice must not take the first
// address's undo away: the owner's link still puts their address back.
func TestUndoSurvivesALaterChange(t *testing.T) {
	const ann = "ann@example.com"
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts, mb := newMailServer(t, db, nil)
		ts.createUser(t, ann)
		intruder := ts.browser(t, firefoxMac)
		intruder.pageSignIn(ann)
		for _, next := range []string{"mal1@example.com", "mal2@example.com"} {
			expectRedirect(t, intruder.changeEmail(next, testPassword), "/account?done=email-sent")
			confirm := mb.linkTo(t, mb.expectOne(t, next, subjectConfirmChange), "/account/email/confirm")
			expectDone(t, intruder.useLink(confirm, "/account/email/confirm"), http.StatusOK, "Confirm your new email address", "Your account now uses this email address.")
		}
		undo := mb.linkTo(t, mb.expectOne(t, ann, subjectEmailChanged), "/account/email/undo")
		mb.expectOne(t, "mal1@example.com", subjectEmailChanged)

		res := ts.newClient(t).useLink(undo, "/account/email/undo")
		expectDone(t, res, http.StatusOK, "Undo the email change",
			"Your old address is back and every device is signed out. Reset your password to be safe.")
		if db.Count(t, "SELECT COUNT(*) FROM users WHERE email = ?", ann) != 1 {
			t.Fatalf("the owner's address is not back:\n%s", ts.accounts(t))
		}
		expectSignedOut(t, intruder)
	})
}

func TestSignInNotices(t *testing.T) {
	const ann = "ann@example.com"
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts, mb := newMailServer(t, db, nil, trustLoopback)
		ts.createUser(t, ann)
		laptop := ts.browser(t, firefoxMac).at("192.0.2.10")
		phone := ts.browser(t, chromeAndroid).at("198.51.100.23")
		s := &steps{t: t}
		s.use(laptop, phone)

		s.run("the account's first sign-in: no notice", func(t *testing.T) {
			laptop.pageSignIn(ann)
			mb.expectNone(t, ann)
		})

		s.run("a new browser: a notice naming it", func(t *testing.T) {
			phone.pageSignIn(ann)
			msg := mb.expectOne(t, ann, subjectNewSignIn)
			for _, want := range []string{"Device: Chrome on Android", "Browser: Chrome 120", "Operating system: Android", "IP address: 198.51.100.23"} {
				if !strings.Contains(msg.Text, want) {
					t.Errorf("the notice lacks %q:\n%s", want, msg.Text)
				}
			}
			mb.linkTo(t, msg, "/devices")
			mb.linkTo(t, msg, "/account")
		})

		s.run("the same browsers again: none", func(t *testing.T) {
			laptop.pageSignIn(ann)
			expectRedirect(t, phone.page("/devices", "/logout", nil), "/login")
			phone.pageSignIn(ann)
			mb.expectNone(t, ann)
		})

		s.run("an app names its device", func(t *testing.T) {
			app := ts.newClient(t).at("203.0.113.9")
			h := map[string]string{"X-Device-Id": "build-server-0001"}
			login := func() {
				res := app.postJSON("/auth/login", map[string]string{"email": ann, "password": testPassword, "device_name": "Build server"}, h)
				if res.StatusCode != http.StatusOK {
					t.Fatalf("login: %d %s", res.StatusCode, res.body)
				}
			}
			login()
			msg := mb.expectOne(t, ann, subjectNewSignIn)
			if !strings.Contains(msg.Text, "Device: Build server") || !strings.Contains(msg.Text, "IP address: 203.0.113.9") {
				t.Fatalf("the notice does not name the app's device:\n%s", msg.Text)
			}
			login()
			mb.expectNone(t, ann)
		})

		s.run("notices turned off: none", func(t *testing.T) {
			expectRedirect(t, laptop.page("/account", "/account/notifications", url.Values{"sign_in_notices": {"off"}}), "/account?done=notices")
			doc := expectPage(t, laptop.get("/account"), http.StatusOK, "Account")
			if text(doc.Find(`form[action="/account/notifications"] button`)) != "Email me about new sign-ins" {
				t.Fatal("the account page does not show the notices as off")
			}
			ts.browser(t, chromeAndroid).at("203.0.113.10").pageSignIn(ann)
			mb.expectNone(t, ann)
			if res := laptop.page("/account", "/account/notifications", url.Values{"sign_in_notices": {"maybe"}}); res.StatusCode != http.StatusBadRequest {
				t.Fatalf("sign_in_notices=maybe: %d", res.StatusCode)
			}
		})

		s.run("and on again: a notice", func(t *testing.T) {
			expectRedirect(t, laptop.page("/account", "/account/notifications", url.Values{"sign_in_notices": {"on"}}), "/account?done=notices")
			ts.browser(t, firefoxMac).at("203.0.113.11").pageSignIn(ann)
			mb.expectOne(t, ann, subjectNewSignIn)
			mb.expectAllTaken(t)
		})
	})
}

// TestReplayNotice: a replayed refresh token (token_reused) sends the owner a notice; a retry
// within the grace window is not a replay and sends none.
func TestReplayNotice(t *testing.T) {
	const ann = "ann@example.com"
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts, mb := newMailServer(t, db, nil, trustLoopback)
		ts.createUser(t, ann)
		app := ts.newClient(t).at("192.0.2.10")
		app.postJSON("/auth/login", map[string]string{"email": ann, "password": testPassword, "device_name": "Ann's tablet"}, nil)
		mb.expectNone(t, ann)

		old := app.cookieValue("gh_refresh")
		app.refresh()
		app.setCookie("gh_refresh", old) // the answer was lost: the app retries at once
		app.refresh()
		mb.expectNone(t, ann)

		stolen := app.cookieValue("gh_refresh")
		app.refresh()
		ts.clock.Advance(11 * time.Second)
		thief := ts.newClient(t).at("203.0.113.66")
		thief.setCookie("gh_refresh", stolen)
		res := thief.do(http.MethodPost, "/auth/refresh", nil, nil)
		if res.StatusCode != http.StatusUnauthorized || res.JSON(t)["error"] != "token_reused" {
			t.Fatalf("replay: %d %s", res.StatusCode, res.body)
		}
		msg := mb.expectOne(t, ann, subjectReplay)
		for _, want := range []string{"Ann's tablet", "203.0.113.66"} {
			if !strings.Contains(msg.Text, want) {
				t.Errorf("the notice lacks %q:\n%s", want, msg.Text)
			}
		}
		mb.linkTo(t, msg, "/devices")

		// The family is closed now: presenting its tokens again is no new replay.
		thief.setCookie("gh_refresh", stolen)
		thief.do(http.MethodPost, "/auth/refresh", nil, nil)
		app.do(http.MethodPost, "/auth/refresh", nil, nil)
		mb.expectNone(t, ann)
		mb.expectAllTaken(t)
	})
}

// TestMailHeaderInjection: CR and LF in any field that could reach a message (addresses, names)
// change nothing in any message's headers: the request is refused, or the text stays in the body.
func TestMailHeaderInjection(t *testing.T) {
	const ann, eve = "ann@example.com", "eve@example.com"
	injected := []string{
		ann + "\r\nBcc: " + eve,
		ann + "\nBcc: " + eve,
		ann + "\rBcc: " + eve,
		ann + "\r\n\r\nBody",
		ann + ", " + eve,
		ann + "\r\n, " + eve,
		"Ann <" + ann + ">\r\nBcc: " + eve,
		"\"Ann\r\nBcc: " + eve + "\" <" + ann + ">",
		ann + "\u2028Bcc: " + eve,
		ann + "\x00Bcc: " + eve,
	}
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts, mb := newMailServer(t, db, nil)
		ts.createUser(t, ann)
		laptop := ts.browser(t, firefoxMac)
		laptop.pageSignIn(ann)
		s := &steps{t: t}
		s.use(laptop)

		s.run("in an address", func(t *testing.T) {
			before := ts.accounts(t)
			for _, email := range injected {
				c := ts.newClient(t)
				if res := c.forgot(email); res.StatusCode != http.StatusBadRequest {
					t.Errorf("forgot %q: %d, want 400", email, res.StatusCode)
				}
				c.postJSON("/auth/password/forgot", map[string]string{"email": email}, nil)
				if res := c.signUp(email); res.StatusCode != http.StatusBadRequest {
					t.Errorf("sign-up %q: %d, want 400", email, res.StatusCode)
				}
				if res := laptop.changeEmail(email, testPassword); res.StatusCode != http.StatusBadRequest {
					t.Errorf("change to %q: %d, want 400", email, res.StatusCode)
				}
			}
			if after := ts.accounts(t); after != before {
				t.Fatalf("changed something:\n%s\nwas\n%s", after, before)
			}
			if n := mb.total(t); n != 0 {
				t.Fatalf("%d messages sent, want none", n)
			}
		})

		s.run("in a name", func(t *testing.T) {
			for _, name := range []string{"Gil\r\nBcc: " + eve, "Gil\nBcc: " + eve, "Gil\rBcc: " + eve, "Gil\tBcc: " + eve} {
				if res := ts.newClient(t).signUpAs("gil@example.com", name); res.StatusCode != http.StatusBadRequest {
					t.Errorf("sign-up as %q: %d, want 400", name, res.StatusCode)
				}
				res := ts.newClient(t).postJSON("/auth/login", map[string]string{"email": ann, "password": testPassword, "device_name": name}, nil)
				if res.StatusCode != http.StatusBadRequest {
					t.Errorf("device name %q: %d, want 400", name, res.StatusCode)
				}
			}
			// What a name may hold goes into bodies only.
			expectRedirect(t, ts.newClient(t).signUpAs("gil@example.com", "Bcc: "+eve+"\u2028Cc: "+eve), "/devices")
			res := ts.newClient(t).postJSON("/auth/login", map[string]string{"email": ann, "password": testPassword, "device_name": "To: " + eve + "\u2028Bcc: " + eve}, nil)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("login: %d %s", res.StatusCode, res.body)
			}
			mb.expectOne(t, "gil@example.com", subjectVerify)
			notice := mb.expectOne(t, ann, subjectNewSignIn)
			if !strings.Contains(notice.Text, "Device: To: "+eve) {
				t.Fatalf("the device name is not in the body:\n%s", notice.Text)
			}
		})

		s.run("every message's headers are as composed", func(t *testing.T) {
			mb.expectNone(t, eve)
			mb.expectAllTaken(t)
			msgs, err := mb.srv.Messages(t.Context())
			if err != nil || len(msgs) != 2 {
				t.Fatalf("messages: %d, %v", len(msgs), err)
			}
			allowed := []string{"Auto-Submitted", "Content-Type", "Date", "From", "Message-Id", "Mime-Version", "Subject", "To", "Received", "Return-Path"}
			for _, s := range msgs {
				full, err := mb.srv.Message(t.Context(), s.ID)
				if err != nil {
					t.Fatal(err)
				}
				h := mb.headers(t, full)
				for name := range h {
					if !containsString(allowed, name) {
						t.Errorf("%q has a header %s: %q", s.Subject, name, h[name])
					}
				}
				to, err := h.AddressList("To")
				if err != nil || len(h["To"]) != 1 || len(to) != 1 || len(s.To) != 1 || to[0].Address != s.To[0].Address {
					t.Errorf("%q is to %q (%+v), %v", s.Subject, h["To"], s.To, err)
				}
				if subj := h.Get("Subject"); subj != s.Subject || strings.Contains(subj, eve) {
					t.Errorf("subject %q", subj)
				}
			}
		})
	})
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestResetRequestsAtOnce: requests for one account that arrive together each send a link, and
// leave exactly one of them working.
func TestResetRequestsAtOnce(t *testing.T) {
	const ann = "ann@example.com"
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts, mb := newMailServer(t, db, nil, func(c *handlers.Config) {
			c.LoginLimitAccount = ratelimit.Rate{N: 100, Per: 15 * time.Minute}
		})
		ts.createUser(t, ann)
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// A request that failed shows in the count of mails below.
				if res, err := http.Post(ts.URL+"/auth/password/forgot", "application/json", strings.NewReader(`{"email":"`+ann+`"}`)); err == nil {
					res.Body.Close()
				}
			}()
		}
		wg.Wait()
		msgs := mb.take(t, ann)
		if len(msgs) != 8 {
			t.Fatalf("%d reset mails, want 8", len(msgs))
		}
		working := 0
		for _, msg := range msgs {
			if ts.newClient(t).get(mb.linkTo(t, msg, "/password/reset")).StatusCode == http.StatusOK {
				working++
			}
		}
		if working != 1 {
			t.Fatalf("%d of 8 links work, want exactly one", working)
		}
	})
}
