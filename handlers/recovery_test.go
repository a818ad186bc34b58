package handlers_test

import (
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"gatehouse/handlers"
	"gatehouse/models/testdb"
	"gatehouse/services/auth"
	"gatehouse/services/ratelimit"
)

// Forgot password, over real SMTP: a person asks for a link, reads it in Mailpit, opens it and
// sets a new password; links that are used, superseded, expired or tampered with change nothing.

// fromIP sends every request of one client through the test server's trusted proxy, on behalf
// of ip (X-Forwarded-For), so that tests can be clients on several networks.
type fromIP struct {
	ip   string
	next http.RoundTripper
}

func (f fromIP) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.ip)
	return f.next.RoundTrip(r)
}

// trustLoopback makes the test server believe X-Forwarded-For from loopback (fromIP).
func trustLoopback(c *handlers.Config) {
	c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
}

// at makes c a client on the network of ip (the server must trustLoopback).
func (c *client) at(ip string) *client {
	next := c.http.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	c.http.Transport = fromIP{ip: ip, next: next}
	return c
}

// page loads from (which must answer 200, so that c holds a CSRF token), then posts values to path.
func (c *client) page(from, path string, values url.Values) *response {
	c.t.Helper()
	if res := c.get(from); res.StatusCode != http.StatusOK {
		c.t.Fatalf("GET %s: %d %.300s", from, res.StatusCode, res.body)
	}
	return c.postForm(path, values)
}

// forgot asks for a reset link on the forgot-password page.
func (c *client) forgot(email string) *response {
	return c.page("/password/forgot", "/password/forgot", url.Values{"email": {email}})
}

// reset posts the reset form with token and password, as the page the link opens does.
func (c *client) reset(token, password string) *response {
	return c.page("/password/forgot", "/password/reset", url.Values{
		"token": {token}, "new_password": {password}, "new_password_confirm": {password}})
}

// mainText is what a page's main element says, its white space folded.
func mainText(t *testing.T, res *response) string {
	t.Helper()
	return strings.Join(strings.Fields(res.Doc(t).Find("main").Text()), " ")
}

// rows runs a one-column query and returns every row, joined with " | ".
func (ts *testServer) rows(t *testing.T, sql string, args ...any) string {
	t.Helper()
	var out []string
	if err := ts.db.Store.DB().Raw(sql, args...).Scan(&out).Error; err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return strings.Join(out, " | ")
}

// accounts sums up what a link could change: every account's address, password, token_version
// and verification, the live sessions, the used links and the security events (failed password
// checks aside, which are recorded on purpose).
func (ts *testServer) accounts(t *testing.T) string {
	t.Helper()
	return strings.Join([]string{
		ts.rows(t, `SELECT email || ' ' || password_hash || ' v' || token_version || ' verified=' ||
			CASE WHEN email_verified_at IS NULL THEN 'no' ELSE 'yes' END FROM users ORDER BY email`),
		"live sessions " + strconv.FormatInt(ts.db.Count(t, "SELECT COUNT(*) FROM device_sessions WHERE revoked_at IS NULL"), 10),
		"used links " + strconv.FormatInt(ts.db.Count(t, "SELECT COUNT(*) FROM link_tokens WHERE used_at IS NOT NULL"), 10),
		"events " + strconv.FormatInt(ts.db.Count(t, "SELECT COUNT(*) FROM security_events WHERE kind NOT IN ('sign_in_failed', 'password_check_failed')"), 10),
	}, "\n")
}

func (ts *testServer) tokenVersion(t *testing.T, email string) string {
	t.Helper()
	return ts.queryString(t, "SELECT CAST(token_version AS TEXT) FROM users WHERE email = ?", email)
}

// expectLinkRefused: the page a dead link opens says so, with a way to ask for a new one.
func expectLinkRefused(t *testing.T, res *response) {
	t.Helper()
	doc := expectPage(t, res, http.StatusBadRequest, "This link no longer works")
	if alert := text(doc.Find(`main [role="alert"]`)); !strings.Contains(alert, "used already, has expired, or a newer one was sent") {
		t.Fatalf("the page does not say why: %q", alert)
	}
	if doc.Find(`main form input[name="token"]`).Length() != 0 {
		t.Fatal("a dead link still shows a form that would use it")
	}
}

// expectAPIInvalidToken: 400 invalid_token.
func expectAPIInvalidToken(t *testing.T, res *response) {
	t.Helper()
	if res.StatusCode != http.StatusBadRequest || res.JSON(t)["error"] != "invalid_token" {
		t.Fatalf("%d %s, want 400 invalid_token", res.StatusCode, res.body)
	}
}

// refreshStatus is the status of one refresh with the client's refresh cookie.
func (c *client) refreshStatus() int {
	return c.do(http.MethodPost, "/auth/refresh", nil, nil).StatusCode
}

func TestForgotPassword(t *testing.T) {
	const ttl = 20 * time.Minute
	const ann = "ann@example.com"
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts, mb := newMailServer(t, db, func(c *auth.Config) { c.ResetTTL = ttl }, func(c *handlers.Config) {
			c.LoginLimitAccount = ratelimit.Rate{N: 100, Per: 15 * time.Minute} // the limits have their own test
		})
		ts.createUser(t, ann)
		ts.createUser(t, "off@example.com")
		if err := ts.svc.DisableUser(t.Context(), "off@example.com"); err != nil {
			t.Fatal(err)
		}
		laptop := ts.browser(t, firefoxMac)
		laptop.pageSignIn(ann)
		phone := ts.newClient(t) // an app
		phone.apiSignIn(ann)
		mb.expect(t, ann, subjectNewSignIn)

		var link, token string
		s := &steps{t: t}
		s.use(laptop, phone)
		step := s.run

		step("same answer whatever the address", func(t *testing.T) {
			var first string
			var firstAPI []byte
			for _, email := range []string{ann, "nobody@example.com", "off@example.com", " ANN@Example.com"} {
				c := ts.newClient(t)
				res := c.forgot(email)
				doc := expectPage(t, res, http.StatusOK, "Reset your password")
				if status := text(doc.Find(`main [role="status"]`)); !strings.Contains(status, "If an account uses that address, we have sent it a link") ||
					!strings.Contains(status, "20 minutes") {
					t.Fatalf("%s: the answer does not say a link may be on its way, valid 20 minutes: %q", email, status)
				}
				if first == "" {
					first = mainText(t, res)
				} else if got := mainText(t, res); got != first {
					t.Fatalf("%s: the page answers %q, for %s it answered %q", email, got, ann, first)
				}
				api := c.postJSON("/auth/password/forgot", map[string]string{"email": email}, nil)
				if api.StatusCode != http.StatusAccepted {
					t.Fatalf("%s: API answered %d %q, want 202", email, api.StatusCode, api.body)
				}
				if firstAPI == nil {
					firstAPI = api.body
				} else if string(api.body) != string(firstAPI) {
					t.Fatalf("%s: API answered %q, for %s it answered %q", email, api.body, ann, firstAPI)
				}
			}
			// Four links to Ann (page and API, twice), none to an address without an active account.
			mb.expect(t, ann, subjectReset, subjectReset, subjectReset, subjectReset)
			mb.expectNone(t, "nobody@example.com")
			mb.expectNone(t, "off@example.com")
			mb.expectAllTaken(t)
			if n := db.Count(t, "SELECT COUNT(*) FROM link_tokens WHERE superseded_at IS NULL"); n != 1 {
				t.Fatalf("%d reset links still work, want only the newest", n)
			}
		})

		tablet := ts.browser(t, chromeAndroid) // where Ann reads her mail
		s.use(tablet)
		step("the link opens a form, and opening it uses nothing", func(t *testing.T) {
			ts.newClient(t).forgot(ann)
			msg := mb.expectOne(t, ann, subjectReset)
			if !strings.Contains(msg.Text, "The link works once, for 20 minutes.") {
				t.Fatalf("the mail does not say how long the link works:\n%s", msg.Text)
			}
			link = mb.linkTo(t, msg, "/password/reset")
			token = tokenOf(t, link)
			before := ts.accounts(t)
			for range 2 { // a mail scanner, then the person
				doc := expectPage(t, tablet.get(link), http.StatusOK, "Choose a new password")
				form := doc.Find(`main form[action="/password/reset"][method="post"]`)
				if v, _ := form.Find(`input[type="hidden"][name="token"]`).Attr("value"); v != token {
					t.Fatalf("the form carries token %q, want the link's", v)
				}
				if form.Find(`input[name="new_password"]`).Length() != 1 || form.Find(`input[name="new_password_confirm"]`).Length() != 1 {
					t.Fatal("the form lacks the password fields")
				}
			}
			if after := ts.accounts(t); after != before {
				t.Fatalf("opening the link changed something:\n%s\nwas\n%s", after, before)
			}
		})

		step("a mismatched or short password keeps the link", func(t *testing.T) {
			before := ts.accounts(t)
			res := tablet.page(link, "/password/reset", url.Values{"token": {token}, "new_password": {newPassword}, "new_password_confirm": {newPassword + "x"}})
			doc := expectPage(t, res, http.StatusBadRequest, "Choose a new password")
			if msg := fieldError(t, doc.Selection, `input[name="new_password_confirm"]`); msg == "" {
				t.Fatal("no error next to the confirmation")
			}
			api := ts.newClient(t).postJSON("/auth/password/reset", map[string]string{"token": token, "new_password": "short"}, nil)
			if api.StatusCode != http.StatusBadRequest || api.JSON(t)["error"] != "invalid_request" {
				t.Fatalf("short password: %d %s", api.StatusCode, api.body)
			}
			if after := ts.accounts(t); after != before {
				t.Fatalf("a refused password changed something:\n%s\nwas\n%s", after, before)
			}
			expectPage(t, tablet.get(link), http.StatusOK, "Choose a new password")
		})

		step("the new password signs every other device out and this browser in", func(t *testing.T) {
			version := ts.tokenVersion(t, ann)
			res := tablet.page(link, "/password/reset", url.Values{"token": {token}, "new_password": {newPassword}, "new_password_confirm": {newPassword}})
			expectRedirect(t, res, "/devices?done=password-reset")
			doc := expectSignedIn(t, tablet)
			if activity := text(doc.Find(`ul[aria-label="Security activity"]`)); !strings.Contains(activity, "Your password was reset with an emailed link, and every device was signed out.") {
				t.Fatalf("the devices page does not show the reset: %q", strings.Join(strings.Fields(activity), " "))
			}
			expectSignedOut(t, laptop)
			if got := phone.refreshStatus(); got != http.StatusUnauthorized {
				t.Fatalf("the app's refresh after the reset: %d, want 401", got)
			}
			if got := ts.tokenVersion(t, ann); got == version {
				t.Fatalf("token_version stayed %s", got)
			}
			if n := db.Count(t, "SELECT COUNT(*) FROM security_events WHERE kind = 'password_reset'"); n != 1 {
				t.Fatalf("%d password_reset events, want 1", n)
			}
			if live := db.Count(t, "SELECT COUNT(*) FROM device_sessions WHERE revoked_at IS NULL"); live != 1 {
				t.Fatalf("%d live sessions, want only the tablet's", live)
			}
			old := ts.newClient(t).postJSON("/auth/login", map[string]string{"email": ann, "password": testPassword}, nil)
			if old.StatusCode != http.StatusUnauthorized {
				t.Fatalf("the old password still signs in: %d", old.StatusCode)
			}
			// The app signs in again with the new password, on the device it was (no notice).
			again := phone.postJSON("/auth/login", map[string]string{"email": ann, "password": newPassword}, nil)
			if again.StatusCode != http.StatusOK {
				t.Fatalf("the new password does not sign in: %d %s", again.StatusCode, again.body)
			}
			if c := claims(t, again.JSON(t)["access_token"].(string)); c["email_verified"] != true {
				t.Fatalf("a reset link reached the address, so it is verified: claims %v", c)
			}
			got := mb.expect(t, ann, subjectPasswordChange, subjectNewSignIn) // the tablet is a new device
			changed := got[subjectPasswordChange]
			mb.linkTo(t, changed, "/password/forgot")
			if !strings.Contains(changed.Text, "Your other devices were signed out.") {
				t.Fatalf("the notice does not say the devices were signed out:\n%s", changed.Text)
			}
		})

		step("a used link is refused and changes nothing", func(t *testing.T) {
			before := ts.accounts(t)
			c := ts.newClient(t)
			expectLinkRefused(t, c.get(link))
			expectLinkRefused(t, c.reset(token, "yet another passphrase"))
			expectAPIInvalidToken(t, c.postJSON("/auth/password/reset", map[string]string{"token": token, "new_password": "yet another passphrase"}, nil))
			if after := ts.accounts(t); after != before {
				t.Fatalf("a used link changed something:\n%s\nwas\n%s", after, before)
			}
			expectSignedIn(t, tablet)
			mb.expectNone(t, ann)
		})

		step("a newer link supersedes the older one", func(t *testing.T) {
			ts.newClient(t).forgot(ann)
			older := mb.linkTo(t, mb.expectOne(t, ann, subjectReset), "/password/reset")
			ts.newClient(t).postJSON("/auth/password/forgot", map[string]string{"email": ann}, nil)
			newer := mb.linkTo(t, mb.expectOne(t, ann, subjectReset), "/password/reset")

			before := ts.accounts(t)
			c := ts.newClient(t)
			expectLinkRefused(t, c.get(older))
			expectLinkRefused(t, c.reset(tokenOf(t, older), "yet another passphrase"))
			expectAPIInvalidToken(t, c.postJSON("/auth/password/reset", map[string]string{"token": tokenOf(t, older), "new_password": "yet another passphrase"}, nil))
			if after := ts.accounts(t); after != before {
				t.Fatalf("a superseded link changed something:\n%s\nwas\n%s", after, before)
			}
			mb.expectNone(t, ann)

			// The newer one works, through the app API: a token body and a refresh cookie.
			app := ts.newClient(t)
			res := app.postJSON("/auth/password/reset", map[string]string{"token": tokenOf(t, newer), "new_password": testPassword + "!"}, nil)
			if res.StatusCode != http.StatusOK || res.cookie("gh_refresh") == nil {
				t.Fatalf("API reset: %d %s", res.StatusCode, res.body)
			}
			access, _ := res.JSON(t)["access_token"].(string)
			if me := app.getBearer("/api/me", access); me.StatusCode != http.StatusOK || me.JSON(t)["email"] != ann {
				t.Fatalf("/api/me with the new token: %d %s", me.StatusCode, me.body)
			}
			if got := app.refreshStatus(); got != http.StatusOK {
				t.Fatalf("the app's refresh cookie: %d", got)
			}
			expectSignedOut(t, tablet)
			if got := phone.refreshStatus(); got != http.StatusUnauthorized {
				t.Fatalf("the other app's refresh after the reset: %d, want 401", got)
			}
			mb.expect(t, ann, subjectPasswordChange, subjectNewSignIn)
		})

		step("an expired link is refused and changes nothing", func(t *testing.T) {
			ts.newClient(t).forgot(ann)
			expiring := mb.linkTo(t, mb.expectOne(t, ann, subjectReset), "/password/reset")
			c := ts.newClient(t)
			ts.clock.Advance(ttl - time.Second)
			expectPage(t, c.get(expiring), http.StatusOK, "Choose a new password")
			ts.clock.Advance(time.Second)
			before := ts.accounts(t)
			expectLinkRefused(t, c.get(expiring))
			expectLinkRefused(t, c.reset(tokenOf(t, expiring), "yet another passphrase"))
			expectAPIInvalidToken(t, c.postJSON("/auth/password/reset", map[string]string{"token": tokenOf(t, expiring), "new_password": "yet another passphrase"}, nil))
			if after := ts.accounts(t); after != before {
				t.Fatalf("an expired link changed something:\n%s\nwas\n%s", after, before)
			}
			mb.expectNone(t, ann)
		})

		step("a link to an account disabled since is refused", func(t *testing.T) {
			ts.createUser(t, "kim@example.com")
			ts.newClient(t).forgot("kim@example.com")
			link := mb.linkTo(t, mb.expectOne(t, "kim@example.com", subjectReset), "/password/reset")
			if err := ts.svc.DisableUser(t.Context(), "kim@example.com"); err != nil {
				t.Fatal(err)
			}
			before := ts.accounts(t)
			c := ts.newClient(t)
			expectLinkRefused(t, c.reset(tokenOf(t, link), "yet another passphrase"))
			expectAPIInvalidToken(t, c.postJSON("/auth/password/reset", map[string]string{"token": tokenOf(t, link), "new_password": "yet another passphrase"}, nil))
			if after := ts.accounts(t); after != before {
				t.Fatalf("changed something:\n%s\nwas\n%s", after, before)
			}
			mb.expectNone(t, "kim@example.com")
		})

		step("tampered, truncated and foreign tokens are refused and change nothing", func(t *testing.T) {
			// A verification link of another account: a real token, for another purpose.
			cy := ts.newClient(t)
			if res := cy.signUp("cy@example.com"); res.StatusCode != http.StatusSeeOther {
				t.Fatalf("sign-up: %d %.300s", res.StatusCode, res.body)
			}
			foreign := tokenOf(t, mb.linkTo(t, mb.expectOne(t, "cy@example.com", subjectVerify), "/verify-email"))

			ts.newClient(t).forgot(ann)
			good := tokenOf(t, mb.linkTo(t, mb.expectOne(t, ann, subjectReset), "/password/reset"))
			flipped := []byte(good)
			i := len("ghr_") + 10
			flipped[i] = map[bool]byte{true: 'B', false: 'A'}[flipped[i] == 'A']
			bad := map[string]string{
				"tampered":          string(flipped),
				"truncated by one":  good[:len(good)-1],
				"truncated to half": good[:len(good)/2],
				"one too many":      good + "A",
				"no prefix":         strings.TrimPrefix(good, "ghr_"),
				"empty":             "",
				"garbage":           "<script>alert(1)</script>",
				"another purpose":   foreign,
			}
			before := ts.accounts(t)
			for name, tok := range bad {
				c := ts.newClient(t)
				expectLinkRefused(t, c.get("/password/reset?token="+url.QueryEscape(tok)))
				expectLinkRefused(t, c.reset(tok, "yet another passphrase"))
				expectAPIInvalidToken(t, c.postJSON("/auth/password/reset", map[string]string{"token": tok, "new_password": "yet another passphrase"}, nil))
				if after := ts.accounts(t); after != before {
					t.Fatalf("%s: changed something:\n%s\nwas\n%s", name, after, before)
				}
			}
			expectPage(t, ts.newClient(t).get("/verify-email?token="+url.QueryEscape(foreign)), http.StatusOK, "Verify your email address")
			expectPage(t, ts.newClient(t).get("/password/reset?token="+url.QueryEscape(good)), http.StatusOK, "Choose a new password")
			mb.expectNone(t, ann)
			mb.expectAllTaken(t)
		})
	})
}

// TestForgotPasswordLimits: reset requests are limited per address and per client network like
// sign-ins, with the same answer for addresses with and without an account.
func TestForgotPasswordLimits(t *testing.T) {
	const ann = "ann@example.com"
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts, mb := newMailServer(t, db, nil, trustLoopback, func(c *handlers.Config) {
			c.LoginLimitAccount = ratelimit.Rate{N: 3, Per: 15 * time.Minute}
			c.LoginLimitIP = ratelimit.Rate{N: 5, Per: 15 * time.Minute}
		})
		ts.createUser(t, ann)

		t.Run("per address", func(t *testing.T) {
			for _, email := range []string{ann, "nobody@example.com"} {
				for i := range 3 { // each from its own network
					c := ts.newClient(t).at("198.51.100." + strconv.Itoa(10+i))
					if i%2 == 0 {
						expectPage(t, c.forgot(email), http.StatusOK, "Reset your password")
					} else if res := c.postJSON("/auth/password/forgot", map[string]string{"email": email}, nil); res.StatusCode != http.StatusAccepted {
						t.Fatalf("%s request %d: %d", email, i, res.StatusCode)
					}
				}
				page := ts.newClient(t).at("198.51.100.20").forgot(strings.ToUpper(email))
				expectPage(t, page, http.StatusTooManyRequests, "Too many attempts")
				if page.Header.Get("Retry-After") == "" {
					t.Fatalf("%s: 429 without Retry-After", email)
				}
				api := ts.newClient(t).at("198.51.100.21").postJSON("/auth/password/forgot", map[string]string{"email": email}, nil)
				if api.StatusCode != http.StatusTooManyRequests || api.JSON(t)["error"] != "rate_limited" || api.Header.Get("Retry-After") == "" {
					t.Fatalf("%s: API past the limit: %d %s", email, api.StatusCode, api.body)
				}
			}
			mb.expect(t, ann, subjectReset, subjectReset, subjectReset)
			mb.expectAllTaken(t)
		})

		t.Run("per network", func(t *testing.T) {
			for i := range 5 {
				c := ts.newClient(t).at("203.0.113.7")
				expectPage(t, c.forgot("someone"+strconv.Itoa(i)+"@example.com"), http.StatusOK, "Reset your password")
			}
			page := ts.newClient(t).at("203.0.113.7").forgot("someone-else@example.com")
			expectPage(t, page, http.StatusTooManyRequests, "Too many attempts")
			api := ts.newClient(t).at("203.0.113.7").postJSON("/auth/password/forgot", map[string]string{"email": ann}, nil)
			if api.StatusCode != http.StatusTooManyRequests || api.JSON(t)["error"] != "rate_limited" {
				t.Fatalf("API past the limit: %d %s", api.StatusCode, api.body)
			}
			mb.expectNone(t, ann)
			// Another network is not held back by this one.
			expectPage(t, ts.newClient(t).at("203.0.113.8").forgot("someone-else@example.com"), http.StatusOK, "Reset your password")
		})

		t.Run("the window passes", func(t *testing.T) {
			ts.clock.Advance(15 * time.Minute)
			expectPage(t, ts.newClient(t).at("203.0.113.7").forgot(ann), http.StatusOK, "Reset your password")
			mb.expectOne(t, ann, subjectReset)
		})
	})
}
