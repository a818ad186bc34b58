package handlers_test

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"gatehouse/handlers"
	"gatehouse/models/testdb"
	"gatehouse/services/ratelimit"
)

// The pages, driven the way a person's browsers drive them: real app, real database, one cookie
// jar per browser, forms posted with the CSRF token of the page they came from.

const (
	newPassword = "a brand new passphrase"
	evilScript  = `<script>alert(1)</script>`
)

// revoked counts device session sid if it is signed out.
func revoked(sid string) string {
	return "SELECT COUNT(*) FROM device_sessions WHERE id = '" + sid + "' AND revoked_at IS NOT NULL"
}

// deviceNamed counts device session sid if it is named name.
func deviceNamed(sid, name string) string {
	return "SELECT COUNT(*) FROM device_sessions WHERE id = '" + sid + "' AND device_name = '" + strings.ReplaceAll(name, "'", "''") + "'"
}

func TestPageHome(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		newStage(t, db).run(t, []scenario{
			{name: "signed out", as: "stranger", path: "/", status: 303, location: "/login"},
			{name: "signed in", as: "laptop", path: "/", status: 303, location: "/devices"},
			{name: "access cookie gone, refresh cookie good", as: "phone", path: "/",
				before: func(_ *stage, c *client) { c.deleteCookie("gh_access") },
				status: 303, location: "/devices"},
			{name: "garbage cookies", as: "stranger", path: "/",
				before: func(_ *stage, c *client) {
					c.setCookie("gh_access", "garbage")
					c.setCookie("gh_refresh", "garbage")
				},
				status: 303, location: "/login"},
		})
	})
}

func TestPageDevicesList(t *testing.T) {
	// seenFrom is the devices page as browser who sees it, other being Ann's other browser.
	seenFrom := func(who, other string) scenario {
		me, them, laptop := rowOf("{"+who+"}"), rowOf("{"+other+"}"), rowOf("{laptop}")
		return scenario{name: who, as: who, path: "/devices", status: 200, page: page{
			heading: "Your devices",
			text: map[string]string{
				laptop + " h2":           "Firefox on macOS",
				rowOf("{phone}") + " h2": "Chrome on Android",
				"header .email":          "ann@example.com",
			},
			count: map[string]int{
				devicesList:                                  2,
				me + `:contains("This device")`:              1,
				them + `:contains("This device")`:            0,
				laptop + `:contains("Firefox 121 on macOS")`: 1,
				laptop + `:contains("127.0.0.1")`:            1,
				laptop + ` time[datetime]`:                   2, // signed in, last active
				laptop + ` form[action$="/signout"] button[aria-label="Sign out Firefox on macOS"]`: 1,
			},
		}, check: func(t *testing.T, _ *stage, _ *client, res *response) {
			if n := res.Doc(t).Find(`ul[aria-label="Security activity"] li:contains("New sign-in")`).Length(); n < 2 {
				t.Fatalf("security activity lists %d sign-ins", n)
			}
		}}
	}
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		h := newStage(t, db)
		h.laptop.pageSignIn("ann@example.com") // again on the same browser: still one row for it
		h.laptopSID = h.ts.sessionOf(t, h.laptop)
		h.run(t, []scenario{seenFrom("laptop", "phone"), seenFrom("phone", "laptop")})
	})
}

func TestPageRename(t *testing.T) {
	const badLength = "Use 1 to 64 characters."
	rename := func(name, sid, value string) scenario {
		return scenario{name: name, as: "laptop", from: "/devices", path: "/devices/" + sid + "/rename", form: url.Values{"name": {value}}}
	}
	// renamed: the name is stored, and the devices page shows it.
	renamed := func(name, sid, value, stored string) scenario {
		sc := rename(name, sid, value)
		sc.status, sc.location = 303, "/devices?done=renamed"
		sc.changes = map[string]int64{deviceNamed(sid, stored): +1}
		sc.landing = &page{
			heading: "Your devices",
			text:    map[string]string{rowOf(sid) + " h2": stored, `[role="status"]`: "Device renamed."},
			count: map[string]int{
				rowOf(sid) + ` form[action$="/signout"] button[aria-label="Sign out ` + stored + `"]`: 1,
				"script:not([src])": 0, // a device name never becomes a <script> element
			},
		}
		return sc
	}
	// refused: the page comes back with the error next to that row's field, which keeps the
	// rejected input, while the row's heading keeps the stored name.
	refused := func(name, sid, value, message string) scenario {
		sc := rename(name, sid, value)
		field := rowOf(sid) + ` input[name="name"]`
		sc.status, sc.unchanged = 400, true
		sc.page = page{
			heading: "Your devices",
			value:   map[string]string{field: value},
			fields:  map[string]string{field: message, otherRows(sid) + ` input[name="name"]`: ""},
		}
		sc.check = func(t *testing.T, s *stage, _ *client, res *response) {
			doc := res.Doc(t)
			shown, stored := text(doc.Find(s.expand(t, rowOf(sid)+" h2"))), s.ts.deviceName(t, s.expand(t, sid))
			if shown != stored {
				t.Fatalf("the row's heading %q, want the unchanged name %q", shown, stored)
			}
			// Above the list, an error summary links to the row's field.
			summary := doc.Find(`main .error-summary-list a`)
			input, _ := doc.Find(s.expand(t, field)).Attr("id")
			if href, _ := summary.Attr("href"); summary.Length() != 1 || href != "#"+input || !strings.HasSuffix(text(summary), message) {
				t.Fatalf("the row's error summary: %d links, first %q to %q; want one to #%s saying %q", summary.Length(), text(summary), href, input, message)
			}
			if doc.Find(`main .error-summary + ul.devices`).Length() != 1 {
				t.Fatal("the error summary is not right above the list of devices")
			}
		}
		return sc
	}
	notFound := func(name, sid, value string) scenario {
		sc := rename(name, sid, value)
		sc.status, sc.page, sc.unchanged = 404, page{heading: "Page not found"}, true
		return sc
	}
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		h := newStage(t, db)
		h.ts.createUser(t, "bob@example.com")
		h.signIn(t, "bob", "bob@example.com", firefoxMac)
		gone := h.signIn(t, "gone", "ann@example.com", firefoxMac)
		gone.get("/devices")
		expectRedirect(t, gone.postForm("/logout", nil), "/login")

		h.run(t, []scenario{
			renamed("new name", "{laptop}", "Work laptop", "Work laptop"),
			renamed("another of my devices", "{phone}", "Ann's phone", "Ann's phone"),
			renamed("trimmed", "{phone}", "  Pixel  ", "Pixel"),
			renamed("64 characters", "{phone}", strings.Repeat("p", 64), strings.Repeat("p", 64)),
			renamed("64 letters of two bytes", "{phone}", strings.Repeat("é", 64), strings.Repeat("é", 64)),
			renamed("HTML is a name like any other", "{laptop}", evilScript, evilScript),
			refused("empty", "{phone}", "", badLength),
			refused("only spaces", "{phone}", "   ", badLength),
			refused("65 characters", "{phone}", strings.Repeat("x", 65), badLength),
			refused("65 letters of two bytes", "{laptop}", strings.Repeat("é", 65), badLength),
			refused("control character", "{phone}", "tab\x01here", "Use 1 to 64 characters without control or text-direction characters."),
			notFound("unknown session", "no-such-session", "Mine now"),
			notFound("another user's session", "{bob}", "Mine now"),
			notFound("a signed-out session", "{gone}", "Back again"),
			notFound("bad name on another user's session", "{bob}", ""),
		})
	})
}

func TestPageSignOutDevice(t *testing.T) {
	notFound := func(name, sid string) scenario {
		return scenario{name: name, as: "laptop", from: "/devices", method: http.MethodPost, path: "/devices/" + sid + "/signout",
			status: 404, page: page{heading: "Page not found"}, unchanged: true}
	}
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		h := newStage(t, db)
		h.ts.createUser(t, "bob@example.com")
		h.signIn(t, "bob", "bob@example.com", firefoxMac)
		h.run(t, []scenario{
			{name: "the other device", as: "laptop", from: "/devices", method: http.MethodPost, path: "/devices/{phone}/signout",
				status: 303, location: "/devices?done=signed-out", changes: map[string]int64{revoked("{phone}"): +1},
				landing:  &page{heading: "Your devices", count: map[string]int{devicesList: 1, rowOf("{phone}"): 0}},
				signedIn: []string{"laptop"}, signedOut: []string{"phone"}},
			{name: "the signed-out device goes to sign-in", as: "phone", path: "/", status: 303, location: "/login"},
			notFound("already signed out", "{phone}"),
			notFound("unknown session", "no-such-session"),
			notFound("another user's session", "{bob}"),
			{name: "the other user is still signed in", as: "bob", path: "/devices", status: 200, page: page{heading: "Your devices"}},
			{name: "this device", as: "laptop", from: "/devices", method: http.MethodPost, path: "/devices/{laptop}/signout",
				status: 303, location: "/login", cleared: []string{"gh_refresh", "gh_access"}, signedOut: []string{"laptop"}},
		})
	})
}

func TestPageSignOutOthers(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		newStage(t, db).run(t, []scenario{{
			name: "sign out others", as: "laptop", from: "/devices", method: http.MethodPost, path: "/devices/signout-others",
			status: 303, location: "/devices?done=others",
			changes: map[string]int64{"SELECT COUNT(*) FROM device_sessions WHERE revoked_at IS NULL": -1},
			landing: &page{
				heading: "Your devices",
				text:    map[string]string{`[role="status"]`: "All other devices were signed out."},
				count:   map[string]int{devicesList: 1, rowOf("{laptop}"): 1},
			},
			signedOut: []string{"phone"},
		}})
	})
}

func TestPageSignOutEverywhere(t *testing.T) {
	const (
		form               = `main form[method="post"][action="/devices/signout-everywhere"]`
		tokenVersionBumped = "SELECT COUNT(*) FROM users WHERE email = 'ann@example.com' AND token_version = 2"
		annLive            = "SELECT COUNT(*) FROM device_sessions d JOIN users u ON u.id = d.user_id WHERE u.email = 'ann@example.com' AND d.revoked_at IS NULL"
	)
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		h := newStage(t, db)
		h.ts.createUser(t, "bob@example.com")
		h.signIn(t, "bob", "bob@example.com", firefoxMac)
		h.run(t, []scenario{
			{
				name: "the confirmation", as: "laptop", path: "/devices/signout-everywhere", status: 200,
				page: page{
					heading: "Sign out everywhere?",
					text:    map[string]string{form + ` button[type="submit"]`: "Yes, sign out everywhere"},
					count:   map[string]int{form: 1, `main a[href="/devices"]:contains("Cancel")`: 1},
				},
				unchanged: true,
			},
			{
				name: "confirmed", as: "laptop", from: "/devices/signout-everywhere", method: http.MethodPost, path: "/devices/signout-everywhere",
				status: 303, location: "/login",
				cleared:   []string{"gh_refresh", "gh_access"},
				changes:   map[string]int64{tokenVersionBumped: +1, annLive: -2},
				signedOut: []string{"laptop", "phone"}, signedIn: []string{"bob"},
			},
		})
	})
}

func TestPageChangePassword(t *testing.T) {
	// refused: the page comes back with the error next to field only, no password sent back,
	// nothing changed, and the other device still signed in.
	refused := func(name, current, next, confirm, field, message string) scenario {
		sc := scenario{name: name, as: "laptop", from: "/account", path: "/account/password",
			form:   url.Values{"current_password": {current}, "new_password": {next}, "new_password_confirm": {confirm}},
			status: 400, page: page{heading: "Account", fields: map[string]string{}},
			unchanged: true, signedIn: []string{"phone"}}
		for _, f := range []string{"current_password", "new_password", "new_password_confirm"} {
			in := `form[action="/account/password"] input[name="` + f + `"]`
			sc.page.fields[in], sc.page.blank = "", append(sc.page.blank, in)
			if f == field {
				sc.page.fields[in] = message
			}
		}
		return sc
	}
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		h := newStage(t, db)
		h.run(t, []scenario{
			{name: "the account page", as: "laptop", path: "/account", status: 200, page: page{heading: "Account"}},
			refused("wrong current password", "not my password", newPassword, newPassword, "current_password", "That is not your current password."),
			refused("confirmation differs", testPassword, newPassword, newPassword+"!", "new_password_confirm", "The passwords do not match."),
			refused("too short", testPassword, "short", "short", "new_password", "Use at least 10 characters."),
			refused("too long", testPassword, strings.Repeat("p", 257), strings.Repeat("p", 257), "new_password", "Use at most 256 characters."),
		})
		t.Run("success", func(t *testing.T) {
			h.use(t)
			h.laptop.get("/account")
			res := h.laptop.postForm("/account/password", url.Values{
				"current_password": {testPassword}, "new_password": {newPassword}, "new_password_confirm": {newPassword},
			})
			expectRedirect(t, res, "/account?done=password")
			doc := expectPage(t, h.laptop.get("/account?done=password"), 200, "Account")
			if got := text(doc.Find(`[role="status"]`)); got != "Password changed. Every other device was signed out." {
				t.Fatalf("flash %q", got)
			}
			expectSignedOut(t, h.phone)
			expectSignedIn(t, h.laptop)

			h.ts.clock.Advance(11 * time.Minute) // past the access lifetime: the refresh cookie still works
			expectSignedIn(t, h.laptop)

			old := h.ts.newClient(t)
			old.get("/login")
			if res := old.postForm("/login", url.Values{"email": {"ann@example.com"}, "password": {testPassword}}); res.StatusCode != 401 {
				t.Fatalf("the old password still signs in: %d", res.StatusCode)
			}
			fresh := h.ts.newClient(t)
			fresh.get("/login")
			expectRedirect(t, fresh.postForm("/login", url.Values{"email": {"ann@example.com"}, "password": {newPassword}}), "/devices")
		})
	})
}

func TestPageCSRF(t *testing.T) {
	forms := []scenario{
		{name: "sign out another device", method: http.MethodPost, path: "/devices/{phone}/signout"},
		{name: "rename", path: "/devices/{laptop}/rename", form: url.Values{"name": {"Pwned"}}},
		{name: "sign out others", method: http.MethodPost, path: "/devices/signout-others"},
		{name: "sign out everywhere", method: http.MethodPost, path: "/devices/signout-everywhere"},
		{name: "change password", path: "/account/password", form: url.Values{
			"current_password": {testPassword}, "new_password": {newPassword}, "new_password_confirm": {newPassword}}},
		{name: "sign out", method: http.MethodPost, path: "/logout"},
		{name: "sign in", path: "/login", form: url.Values{"email": {"ann@example.com"}, "password": {testPassword}}},
		{name: "sign up", path: "/signup", form: url.Values{
			"email": {"mallory@example.com"}, "password": {testPassword}, "password_confirm": {testPassword}}},
	}
	tokens := []scenario{
		{name: "no token", noCSRF: true},
		{name: "wrong token", noCSRF: true, form: url.Values{"_csrf": {strings.Repeat("A", 43)}}},
		{name: "another browser's token", noCSRF: true, form: url.Values{"_csrf": {"{phone.csrf}"}}},
		{name: "token without its cookie", before: func(_ *stage, c *client) { c.deleteCookie("gh_csrf") }},
		{name: "foreign Origin", header: map[string]string{"Origin": "http://evil.test"}},
		{name: "null Origin", header: map[string]string{"Origin": "null"}},
	}
	// Every refusal is the same: 403, no session cookie touched, no row changed, both browsers
	// still signed in.
	var cases []scenario
	for _, f := range forms {
		for _, tok := range tokens {
			sc := f
			sc.name, sc.noCSRF, sc.header = f.name+"/"+tok.name, tok.noCSRF, tok.header
			sc.form = url.Values{}
			maps.Copy(sc.form, f.form)
			maps.Copy(sc.form, tok.form)
			sc.as, sc.from = "laptop", "/devices"
			sc.before = func(s *stage, c *client) {
				if s.laptop.csrf == "" || s.phone.csrf == "" || s.laptop.csrf == s.phone.csrf {
					c.t.Fatal("each browser needs its own CSRF token")
				}
				if tok.before != nil {
					tok.before(s, c)
				}
			}
			sc.status, sc.page = 403, page{heading: "Not allowed"}
			sc.cookies = map[string]bool{"gh_refresh": false, "gh_access": false}
			sc.unchanged, sc.signedIn = true, []string{"laptop", "phone"}
			cases = append(cases, sc)
		}
	}
	cases = append(cases, scenario{
		name: "the portal's own Origin with a good token is accepted", as: "laptop", from: "/devices",
		path: "/devices/{laptop}/rename", form: url.Values{"name": {"Mine"}}, header: map[string]string{"Origin": "{url}"},
		status: 303, location: "/devices?done=renamed",
	})
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		h := newStage(t, db)
		h.phone.get("/devices")
		h.run(t, cases)
	})
}

func TestPageSilentRefresh(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newTestServer(t, db)
		ts.createUser(t, "ann@example.com")
		expire := []struct {
			name   string
			expire func(c *client)
		}{
			{"access cookie gone", func(c *client) { c.deleteCookie("gh_access") }},
			{"access token past its lifetime", func(*client) { ts.clock.Advance(11 * time.Minute) }},
			{"access cookie tampered with", func(c *client) { c.setCookie("gh_access", c.cookieValue("gh_access")+"x") }},
		}
		for _, tc := range expire {
			t.Run(tc.name, func(t *testing.T) {
				c := ts.browser(t, firefoxMac)
				c.pageSignIn("ann@example.com")
				sid := ts.sessionOf(t, c)
				oldRefresh, oldAccess := c.cookieValue("gh_refresh"), c.cookieValue("gh_access")
				tc.expire(c)

				res := c.get("/devices")
				doc := expectPage(t, res, 200, "Your devices")
				if doc.Find(`form[action="/login"], input[type="password"]`).Length() != 0 {
					t.Fatal("the page prompts for a sign-in")
				}
				if deviceRow(doc, sid).Find(`:contains("This device")`).Length() == 0 {
					t.Fatal("the same device session goes on")
				}
				rotated := res.cookie("gh_refresh")
				if rotated == nil || rotated.Value == "" || rotated.Value == oldRefresh || !rotated.HttpOnly || rotated.MaxAge != 336*3600 {
					t.Fatalf("the refresh cookie must be rotated: %+v", rotated)
				}
				if a := c.cookieValue("gh_access"); a == "" || a == oldAccess {
					t.Fatal("a new access cookie must be set")
				}
				again := c.get("/devices")
				expectPage(t, again, 200, "Your devices")
				if again.cookie("gh_refresh") != nil {
					t.Fatal("a good access cookie must not rotate the refresh token again")
				}
				c.get("/devices")
				expectRedirect(t, c.postForm("/devices/"+sid+"/rename", url.Values{"name": {"Still me"}}), "/devices?done=renamed")
			})
		}
		t.Run("form posted after the access token expired", func(t *testing.T) {
			c := ts.browser(t, firefoxMac)
			c.pageSignIn("ann@example.com")
			sid := ts.sessionOf(t, c)
			c.get("/devices")
			ts.clock.Advance(11 * time.Minute)
			res := c.postForm("/devices/"+sid+"/rename", url.Values{"name": {"Renamed late"}})
			expectRedirect(t, res, "/devices?done=renamed")
			if ts.deviceName(t, sid) != "Renamed late" || res.cookie("gh_refresh") == nil {
				t.Fatal("the form must go on after a silent refresh")
			}
		})
		t.Run("refresh cookie past its idle lifetime", func(t *testing.T) {
			c := ts.browser(t, firefoxMac)
			c.pageSignIn("ann@example.com")
			ts.clock.Advance(337 * time.Hour)
			expectSignedOut(t, c)
			if c.cookieValue("gh_refresh") != "" {
				t.Fatal("a dead refresh cookie must be cleared")
			}
		})
	})
}

func TestPageLogin(t *testing.T) {
	// failed: one generic alert whatever went wrong, no field marked, the email and next kept,
	// the password not sent back, nothing escaped wrongly, no session started.
	failed := func(name, email, password string) scenario {
		const form = `form[action="/login"]`
		return scenario{
			name: name, as: "stranger", from: "/login?next=%2Faccount", path: "/login",
			form:   url.Values{"email": {email}, "password": {password}, "next": {"/account"}},
			status: 401,
			page: page{
				heading: "Sign in",
				text:    map[string]string{`[role="alert"]`: "The email or password is not right."},
				count:   map[string]int{`[role="alert"]`: 1, `[aria-invalid="true"]`: 0, "script:not([src])": 0},
				value:   map[string]string{form + ` input[name="email"]`: email, form + ` input[name="next"]`: "/account"},
				blank:   []string{form + ` input[name="password"]`},
				lacks:   []string{"<script>alert"},
			},
			cookies:   map[string]bool{"gh_refresh": false, "gh_access": false},
			unchanged: true,
		}
	}
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		h := newStage(t, db)
		ts := h.ts
		ts.createUser(t, "gone@example.com")
		if err := ts.svc.DisableUser(context.Background(), "gone@example.com"); err != nil {
			t.Fatal(err)
		}

		t.Run("success", func(t *testing.T) {
			c := ts.browser(t, firefoxMac)
			doc := expectPage(t, c.get("/login"), 200, "Sign in")
			if doc.Find(`header nav, form[action="/logout"]`).Length() != 0 {
				t.Fatal("a signed-out page shows the signed-in header")
			}
			res := c.postForm("/login", url.Values{"email": {"Ann@Example.com"}, "password": {testPassword}})
			expectRedirect(t, res, "/devices")
			refresh, access := res.cookie("gh_refresh"), res.cookie("gh_access")
			if refresh == nil || !refresh.HttpOnly || refresh.SameSite != http.SameSiteLaxMode || refresh.Secure || refresh.MaxAge != 336*3600 || refresh.Path != "/" {
				t.Fatalf("refresh cookie attributes: %+v", refresh)
			}
			if access == nil || !access.HttpOnly || access.MaxAge != 600 {
				t.Fatalf("access cookie attributes: %+v", access)
			}
			expectSignedIn(t, c)
			expectRedirect(t, c.get("/login"), "/devices")
		})

		h.run(t, []scenario{
			failed("wrong password", "ann@example.com", "not the password"),
			failed("unknown email", "nobody@example.com", testPassword),
			failed("disabled account", "gone@example.com", testPassword),
			failed("not an email", "ann", testPassword),
			failed("empty password", "ann@example.com", ""),
			failed("empty form", "", ""),
			failed("HTML in the email", `"><script>alert(1)</script>@example.com`, "whatever it is"),
		})
	})
}

func TestPageLoginRateLimit(t *testing.T) {
	attempt := func(c *client, email, password string) *response {
		c.get("/login")
		return c.postForm("/login", url.Values{"email": {email}, "password": {password}})
	}
	expectLimited := func(t *testing.T, res *response, window time.Duration) {
		t.Helper()
		doc := expectPage(t, res, 429, "Sign in")
		secs, err := strconv.Atoi(res.Header.Get("Retry-After"))
		if err != nil || secs < 1 || secs > int(window/time.Second)+1 {
			t.Fatalf("Retry-After %q, want seconds within the window", res.Header.Get("Retry-After"))
		}
		if a := doc.Find(`[role="alert"]`); a.Length() != 1 || !strings.Contains(text(a), "Too many attempts") {
			t.Fatalf("alert %q", text(a))
		}
		if res.cookie("gh_refresh") != nil {
			t.Fatal("a limited sign-in must not start a session")
		}
	}
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		t.Run("per account", func(t *testing.T) {
			ts := newTestServer(t, db, func(c *handlers.Config) { c.LoginLimitAccount = ratelimit.Rate{N: 3, Per: 15 * time.Minute} })
			ts.createUser(t, "ann@example.com")
			ts.createUser(t, "bob@example.com")
			c := ts.newClient(t)
			for i, email := range []string{"ann@example.com", "ANN@example.com", " ann@example.com"} {
				if res := attempt(c, email, "not the password"); res.StatusCode != 401 {
					t.Fatalf("failure %d: %d", i+1, res.StatusCode)
				}
			}
			sessions := db.Count(t, "SELECT COUNT(*) FROM device_sessions")
			expectLimited(t, attempt(c, "ann@example.com", testPassword), 15*time.Minute)
			expectLimited(t, attempt(ts.newClient(t), "Ann@Example.com", testPassword), 15*time.Minute)
			if db.Count(t, "SELECT COUNT(*) FROM device_sessions") != sessions {
				t.Fatal("a limited sign-in created a session")
			}
			expectRedirect(t, attempt(ts.newClient(t), "bob@example.com", testPassword), "/devices")
			ts.clock.Advance(15*time.Minute + time.Second)
			expectRedirect(t, attempt(c, "ann@example.com", testPassword), "/devices")
		})
		t.Run("per IP", func(t *testing.T) {
			ts := newTestServer(t, db, func(c *handlers.Config) { c.LoginLimitIP = ratelimit.Rate{N: 5, Per: 10 * time.Minute} })
			ts.createUser(t, "cat@example.com")
			for i := range 5 {
				if res := attempt(ts.newClient(t), "user"+strconv.Itoa(i)+"@example.com", "not the password"); res.StatusCode != 401 {
					t.Fatalf("attempt %d: %d", i+1, res.StatusCode)
				}
			}
			expectLimited(t, attempt(ts.newClient(t), "cat@example.com", testPassword), 10*time.Minute)
			ts.clock.Advance(10*time.Minute + time.Second)
			expectRedirect(t, attempt(ts.newClient(t), "cat@example.com", testPassword), "/devices")
		})
	})
}

func TestPageLoginNext(t *testing.T) {
	cases := []struct{ next, want string }{
		{"", "/devices"},
		{"/account", "/account"},
		{"/devices?done=renamed", "/devices?done=renamed"},
		{"http://app.example.test/x", "http://app.example.test/x"},
		{"//evil.test", "/devices"},
		{"///evil.test", "/devices"},
		{"https://evil.test", "/devices"},
		{"http://evil.test/login", "/devices"},
		{`/\evil.test`, "/devices"},
		{`\\evil.test`, "/devices"},
		{"javascript:alert(1)", "/devices"},
		{"JavaScript:alert(1)", "/devices"},
		{"data:text/html,hi", "/devices"},
		{"https:evil.test", "/devices"},
		{"http://app.example.test@evil.test/", "/devices"},
		{"http://app.example.test.evil.test/x", "/devices"},
		{"/\t/evil.test", "/devices"},
		{" //evil.test", "/devices"},
	}
	var scenarios []scenario
	for _, tc := range cases {
		login := "/login?next=" + url.QueryEscape(tc.next)
		scenarios = append(scenarios,
			scenario{name: "kept " + tc.next, as: "stranger", path: login, status: 200,
				page: page{heading: "Sign in", value: map[string]string{`form[action="/login"] input[name="next"]`: tc.next}}},
			scenario{name: "followed " + tc.next, as: "stranger", from: login, path: "/login",
				form:   url.Values{"email": {"ann@example.com"}, "password": {testPassword}, "next": {tc.next}},
				status: 303, location: tc.want,
				check: func(t *testing.T, _ *stage, c *client, _ *response) {
					expectRedirect(t, c.get(login), tc.want) // already signed in
				}})
	}
	scenarios = append(scenarios, scenario{
		name: "an absolute URL on the portal itself", as: "stranger", from: "/login", path: "/login",
		form:   url.Values{"email": {"ann@example.com"}, "password": {testPassword}, "next": {"{url}/account"}},
		status: 303, location: "{url}/account",
	})
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		h := newStage(t, db)
		ts := h.ts
		h.run(t, scenarios)
		t.Run("a signed-out page request comes back after sign-in", func(t *testing.T) {
			c := ts.newClient(t)
			expectRedirect(t, c.get("/account"), "/login?next=%2Faccount")
			c.get("/login?next=%2Faccount")
			expectRedirect(t, c.postForm("/login", url.Values{"email": {"ann@example.com"}, "password": {testPassword}, "next": {"/account"}}), "/account")
		})
	})
}

func TestPageSignup(t *testing.T) {
	// refused: the page comes back with the error next to field only, the email and display
	// name kept, the passwords not sent back, and nothing stored or signed in.
	refused := func(name, email, display, password, confirm string, status int, field, message string) scenario {
		sc := scenario{
			name: name, as: "stranger", from: "/signup", path: "/signup",
			form:   url.Values{"email": {email}, "display_name": {display}, "password": {password}, "password_confirm": {confirm}},
			status: status,
			page: page{
				heading: "Create your account",
				fields:  map[string]string{},
				value:   map[string]string{`input[name="email"]`: email, `input[name="display_name"]`: display},
				blank:   []string{`input[name="password"]`, `input[name="password_confirm"]`},
			},
			cookies:   map[string]bool{"gh_refresh": false},
			unchanged: true,
		}
		for _, f := range []string{"email", "display_name", "password", "password_confirm"} {
			sc.page.fields[`input[name="`+f+`"]`] = ""
		}
		sc.page.fields[`input[name="`+field+`"]`] = message
		return sc
	}
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		newStage(t, db).run(t, []scenario{
			{name: "the form", as: "stranger", path: "/signup", status: 200, page: page{heading: "Create your account"}},
			{
				name: "success", as: "stranger", from: "/signup", path: "/signup",
				form:   url.Values{"email": {"New@Example.com"}, "display_name": {"New Person"}, "password": {testPassword}, "password_confirm": {testPassword}},
				status: 303, location: "/devices",
				cookies: map[string]bool{"gh_refresh": true, "gh_access": true}, // sign-up signs in
				changes: map[string]int64{"SELECT COUNT(*) FROM users WHERE email = 'new@example.com' AND display_name = 'New Person'": +1},
				landing: &page{heading: "Your devices", text: map[string]string{"header .email": "new@example.com"}, count: map[string]int{devicesList: 1}},
			},
			refused("email taken", "ANN@example.com", "Ann again", testPassword, testPassword, 409, "email", "An account with this email already exists. Sign in instead."),
			refused("not an email", "ann-at-example", "", testPassword, testPassword, 400, "email", "Enter a valid email address, like name@example.com."),
			refused("no email", "", "", testPassword, testPassword, 400, "email", "Enter your email address."),
			refused("confirmation differs", "other@example.com", "Other", testPassword, testPassword+"!", 400, "password_confirm", "The passwords do not match."),
			refused("password too short", "other@example.com", "", "short", "short", 400, "password", "Use at least 10 characters."),
			refused("display name too long", "other@example.com", strings.Repeat("n", 65), testPassword, testPassword, 400, "display_name", "Use at most 64 characters."),
		})
	})
}

func TestPageSignupOff(t *testing.T) {
	notFound := page{heading: "Page not found"}
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		newStage(t, db, func(c *handlers.Config) { c.SignupEnabled = false }).run(t, []scenario{
			{name: "the sign-in page does not offer it", as: "stranger", path: "/login", status: 200,
				page: page{heading: "Sign in", count: map[string]int{`a[href="/signup"]`: 0}}},
			{name: "the form is not found", as: "stranger", path: "/signup", status: 404, page: notFound},
			{name: "a sign-up is not found", as: "stranger", from: "/login", path: "/signup",
				form:   url.Values{"email": {"new@example.com"}, "password": {testPassword}, "password_confirm": {testPassword}},
				status: 404, page: notFound, cookies: map[string]bool{"gh_refresh": false}, unchanged: true},
		})
	})
}

// securityHeaders checks the headers every page carries, and no-store on signed-in ones.
func securityHeaders(signedIn bool) func(t *testing.T, _ *stage, _ *client, res *response) {
	return func(t *testing.T, _ *stage, _ *client, res *response) {
		csp := res.Header.Get("Content-Security-Policy")
		if csp == "" || strings.Contains(csp, "'unsafe-inline'") || strings.Contains(csp, "'unsafe-eval'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Fatalf("Content-Security-Policy %q", csp)
		}
		if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Fatalf("X-Content-Type-Options %q", got)
		}
		if got := res.Header.Get("Referrer-Policy"); !slices.Contains([]string{"no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"}, got) {
			t.Fatalf("Referrer-Policy %q", got)
		}
		if cc := res.Header.Get("Cache-Control"); signedIn && !strings.Contains(cc, "no-store") {
			t.Fatalf("a signed-in page with Cache-Control %q", cc)
		}
	}
}

func TestPageSecurityHeaders(t *testing.T) {
	cases := []scenario{
		{name: "sign-in page", as: "stranger", path: "/login", status: 200},
		{name: "sign-up page", as: "stranger", path: "/signup", status: 200},
		{name: "failed sign-in", as: "stranger", from: "/login", path: "/login",
			form: url.Values{"email": {"ann@example.com"}, "password": {"nope nope nope"}}, status: 401},
		{name: "unknown page", as: "stranger", path: "/no-such-page", status: 404},
		{name: "devices", as: "laptop", path: "/devices", status: 200},
		{name: "account", as: "laptop", path: "/account", status: 200},
		{name: "confirmation", as: "laptop", path: "/devices/signout-everywhere", status: 200},
		{name: "rename refused", as: "laptop", from: "/devices", path: "/devices/{laptop}/rename", form: url.Values{"name": {""}}, status: 400},
		{name: "password change refused", as: "laptop", from: "/account", path: "/account/password",
			form: url.Values{"current_password": {"wrong wrong"}, "new_password": {newPassword}, "new_password_confirm": {newPassword}}, status: 400},
		{name: "another user's device", as: "laptop", from: "/devices", method: http.MethodPost, path: "/devices/no-such-session/signout", status: 404},
	}
	for i := range cases {
		// An HTML page that works without JavaScript and carries no inline script.
		cases[i].page.count = map[string]int{"script:not([src])": 0}
		cases[i].check = securityHeaders(cases[i].as != "stranger")
	}
	testdb.Each(t, func(t *testing.T, db *testdb.DB) { newStage(t, db).run(t, cases) })
}

func TestPageLogout(t *testing.T) {
	const form = `header form[method="post"][action="/logout"]`
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		newStage(t, db).run(t, []scenario{
			{name: "the header offers it", as: "laptop", path: "/devices", status: 200, page: page{
				heading: "Your devices", count: map[string]int{form: 1}, text: map[string]string{form + " button": "Sign out"},
			}},
			{name: "sign out", as: "laptop", from: "/devices", method: http.MethodPost, path: "/logout", status: 303, location: "/login",
				cookies:  map[string]bool{"gh_refresh": true, "gh_access": true}, // to clear them
				cleared:  []string{"gh_refresh", "gh_access"},
				changes:  map[string]int64{revoked("{laptop}"): +1},
				signedIn: []string{"phone"}, signedOut: []string{"laptop"}},
			{name: "signed out already", as: "laptop", from: "/login", method: http.MethodPost, path: "/logout",
				status: 303, location: "/login", unchanged: true},
		})
	})
}

// Two tabs of one browser whose access cookie expired load pages at once: both answer without a
// sign-in prompt and converge on one refresh token, and nothing is taken for a replay.
func TestPageParallelTabsRefreshOnce(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		h := newHousehold(t, db)
		h.ts.clock.Advance(11 * time.Minute)
		tabs := make([]*client, 6)
		for i := range tabs {
			tabs[i] = h.ts.browser(t, firefoxMac)
			for _, name := range []string{"gh_refresh", "gh_access", "gh_device", "gh_csrf"} {
				tabs[i].setCookie(name, h.laptop.cookieValue(name))
			}
		}
		results := make([]*response, len(tabs))
		var wg sync.WaitGroup
		for i, tab := range tabs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = tab.get("/devices")
			}()
		}
		wg.Wait()
		successor := ""
		for i, res := range results {
			if res.StatusCode != 200 {
				t.Fatalf("tab %d: %d to %q", i, res.StatusCode, res.Header.Get("Location"))
			}
			ck := res.cookie("gh_refresh")
			if ck == nil || ck.Value == "" {
				t.Fatalf("tab %d got no rotated refresh cookie", i)
			}
			if successor == "" {
				successor = ck.Value
			}
			if ck.Value != successor {
				t.Fatalf("tab %d got another successor: the family forked", i)
			}
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM security_events WHERE kind = 'token_reused'"); n != 0 {
			t.Fatal("parallel tabs were taken for a replay")
		}
		h.ts.clock.Advance(11 * time.Minute)
		expectSignedIn(t, tabs[0])
		expectSignedIn(t, h.phone)
	})
}

// A stolen refresh token used after its owner rotated it signs that device out, and the other
// devices see the replay in the security activity as a warning.
func TestPageReplayShowsWarning(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		h := newHousehold(t, db)
		stolen := h.laptop.cookieValue("gh_refresh")
		h.laptop.deleteCookie("gh_access")
		expectSignedIn(t, h.laptop) // rotates
		h.ts.clock.Advance(11 * time.Second)

		thief := h.ts.newClient(t)
		thief.setCookie("gh_refresh", stolen)
		expectRedirect(t, thief.get("/devices"), "/login?done=session-reused&next=%2Fdevices")
		expectSignedOut(t, h.laptop)

		doc := expectSignedIn(t, h.phone)
		if deviceRow(doc, h.laptopSID).Length() != 0 {
			t.Fatal("the replayed device is still listed")
		}
		warning := doc.Find(`ul[aria-label="Security activity"] > li`).FilterFunction(func(_ int, li *goquery.Selection) bool {
			return strings.Contains(li.Text(), "Someone may have a copy of your sign-in on Firefox on macOS; we signed that device out.")
		})
		if warning.Length() != 1 || !strings.Contains(warning.Text(), "Warning") || !strings.Contains(warning.Text(), "If this wasn't you, change your password.") ||
			warning.Find(`a[href="/account"]`).Length() != 1 {
			t.Fatalf("the replay is not shown as a warning naming the device: %q", strings.Join(strings.Fields(doc.Find(`ul[aria-label="Security activity"]`).Text()), " "))
		}
	})
}

// A device session past its absolute lifetime is gone: it is not listed, and its id is as
// unknown as any other, so renaming or signing it out answers 404 and changes nothing.
func TestPageExpiredDeviceIsGone(t *testing.T) {
	gone := func(name, action string, values url.Values) scenario {
		return scenario{name: name, as: "laptop", from: "/devices", method: http.MethodPost, path: "/devices/{phone}/" + action, form: values,
			status: 404, page: page{heading: "Page not found"}, unchanged: true}
	}
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newTestServer(t, db)
		ts.createUser(t, "ann@example.com")
		phone := ts.browser(t, chromeAndroid)
		phone.pageSignIn("ann@example.com")
		phoneSID := ts.sessionOf(t, phone)
		ts.clock.Advance(700 * time.Hour)
		laptop := ts.browser(t, firefoxMac)
		laptop.pageSignIn("ann@example.com")
		ts.clock.Advance(21 * time.Hour) // the phone's session is 721h old (max 720h), the laptop's 21h

		stageOf(&household{ts: ts, laptop: laptop, phone: phone, laptopSID: ts.sessionOf(t, laptop), phoneSID: phoneSID}).run(t, []scenario{
			{name: "the phone is signed out, and told why", as: "phone", path: "/devices", status: 303, location: "/login?done=session-expired&next=%2Fdevices"},
			{name: "the laptop does not list it", as: "laptop", path: "/devices", status: 200,
				page: page{heading: "Your devices", count: map[string]int{rowOf("{phone}"): 0}}},
			gone("rename", "rename", url.Values{"name": {"Zombie"}}),
			gone("rename with a bad name", "rename", url.Values{"name": {""}}),
			gone("sign out", "signout", nil),
		})
	})
}

// rawRequest sends bytes no well-behaved client would send and reads the answer.
func (ts *testServer) rawRequest(t *testing.T, request string) *http.Response {
	t.Helper()
	u, _ := url.Parse(ts.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(request)); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

// Odd but harmless input from a browser is never a 5xx: the sign-in goes on (or is refused with
// a 4xx), and a form field that cannot be stored is a 400 next to that field.
func TestPageOddInputIsNeverA5xx(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		h := newStage(t, db)
		ts := h.ts

		t.Run("sign-in from a User-Agent that is not UTF-8", func(t *testing.T) {
			c := ts.browser(t, "Mozilla/5.0 (X11; \xff\xfe) Firefox/121.0")
			c.get("/login")
			res := c.postForm("/login", url.Values{"email": {"ann@example.com"}, "password": {testPassword}})
			if res.StatusCode >= 500 {
				t.Fatalf("%d: a User-Agent header is the client's input, never a server error", res.StatusCode)
			}
			if res.StatusCode == 303 {
				expectSignedIn(t, c)
			}
		})
		t.Run("sign-in from a User-Agent with a NUL byte", func(t *testing.T) {
			c := ts.newClient(t)
			c.get("/login")
			body := url.Values{"email": {"ann@example.com"}, "password": {testPassword}, "_csrf": {c.csrf}}.Encode()
			u, _ := url.Parse(ts.URL)
			var cookies []string
			for _, ck := range c.http.Jar.Cookies(u) {
				cookies = append(cookies, ck.Name+"="+ck.Value)
			}
			res := ts.rawRequest(t, fmt.Sprintf("POST /login HTTP/1.1\r\nHost: %s\r\nUser-Agent: Firefox\x00121\r\nCookie: %s\r\n"+
				"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
				u.Host, strings.Join(cookies, "; "), len(body), body))
			if res.StatusCode >= 500 {
				t.Fatalf("%d: a User-Agent header is the client's input, never a server error", res.StatusCode)
			}
		})
		h.run(t, []scenario{{
			name: "sign-up with a NUL in the display name", as: "stranger", from: "/signup", path: "/signup",
			form:   url.Values{"email": {"nul@example.com"}, "display_name": {"Ann\x00Lee"}, "password": {testPassword}, "password_confirm": {testPassword}},
			status: 400, page: page{heading: "Create your account"}, unchanged: true,
			check: func(t *testing.T, _ *stage, _ *client, res *response) {
				if fieldError(t, res.Doc(t).Selection, `input[name="display_name"]`) == "" {
					t.Fatal("no error next to the display name")
				}
			},
		}})
	})
}
