package handlers_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"gatehouse/handlers"
	"gatehouse/models/testdb"
	"gatehouse/services/auth"
	"gatehouse/services/ratelimit"
)

// The security page (/account/security): changes to the factors ask for the password, or a code,
// when it was entered more than ten minutes ago; each action refuses what is not the person's.

// sfPrompt: the answer is the re-authentication prompt, posting back to action, with a code field
// where the account has a second factor.
func sfPrompt(t *testing.T, res *response, status int, action string, codes bool) {
	t.Helper()
	doc := sfPage(t, res, status)
	if doc.Find(`main form[action="`+action+`"] input[name="password"]`).Length() != 1 {
		t.Fatalf("no password prompt posting to %s: %.600s", action, res.body)
	}
	if got := doc.Find(`main form[action="` + action + `"] input[name="code"]`).Length(); (got == 1) != codes {
		t.Fatalf("the prompt offers a code field: %v, want %v", got == 1, codes)
	}
}

func sfEvents(t *testing.T, ts *testServer, kind string) int64 {
	t.Helper()
	return ts.db.Count(t, "SELECT COUNT(*) FROM security_events WHERE kind = ?", kind)
}

func TestSecurityReauthWithCode(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newSFServer(t, db, func(c *handlers.Config) {
			c.LoginLimitAccount = ratelimit.Rate{N: 100, Per: 15 * time.Minute}
		})
		laptop := ts.browser(t, firefoxMac)
		laptop.pageSignIn(sfAnn)
		app := sfEnrol(t, laptop, "Pixel")
		s := &steps{t: t}
		s.use(laptop)

		ts.clock.Advance(auth.SecurityReauthWindow + time.Minute)
		s.run("past ten minutes the page asks first, offering a code", func(t *testing.T) {
			sfPrompt(t, laptop.get("/account/security"), http.StatusOK, "/account/security", true)
			factors := db.Count(t, "SELECT COUNT(*) FROM factors")
			sfPrompt(t, laptop.postForm("/account/security/totp", nil), http.StatusForbidden, "/account/security/totp", true)
			sfPrompt(t, laptop.postForm("/account/security/recovery-codes", nil), http.StatusForbidden, "/account/security/recovery-codes", true)
			del := "/account/security/factors/" + app.factorID + "/delete"
			sfPrompt(t, laptop.postForm(del, nil), http.StatusForbidden, del, true)
			if db.Count(t, "SELECT COUNT(*) FROM factors") != factors || db.Count(t, "SELECT COUNT(*) FROM recovery_codes WHERE used_at IS NULL") != 10 {
				t.Fatal("an action ran without the password or a code")
			}
		})

		s.run("a wrong code shows the error on the prompt and is recorded", func(t *testing.T) {
			failed := sfEvents(t, ts, "second_factor_failed")
			for _, code := range []string{"000000", sfCode(t, ts, app.secret, 3), "abcdef", strings.Repeat("1", 10<<10)} {
				res := laptop.postForm("/account/security", url.Values{"code": {code}})
				sfPrompt(t, res, http.StatusBadRequest, "/account/security", true)
				if !strings.Contains(mainText(t, res), "That code is not right") {
					t.Fatalf("code %.20q: the prompt does not say the code is wrong: %q", code, mainText(t, res))
				}
			}
			if got := sfEvents(t, ts, "second_factor_failed") - failed; got != 4 {
				t.Fatalf("%d wrong codes recorded, want 4", got)
			}
			sfPrompt(t, laptop.get("/account/security"), http.StatusOK, "/account/security", true)
		})

		s.run("the app's code confirms it's you", func(t *testing.T) {
			expectRedirect(t, laptop.postForm("/account/security", url.Values{"code": {sfCode(t, ts, app.secret, 0)}}), "/account/security")
			doc := sfPage(t, laptop.get("/account/security"), http.StatusOK)
			if doc.Find(`main form[action="/account/security/totp"]`).Length() != 1 {
				t.Fatal("after the code the security page is not shown")
			}
			// The code is spent: it does not finish a sign-in in the same time step.
			phone := ts.newClient(t)
			expectAPIError(t, sfAPISecondStep(phone, sfAPILogin(t, phone, nil), sfCode(t, ts, app.secret, 0)), http.StatusUnauthorized, "invalid_code")
		})

		s.run("a code also confirms the action it was asked for", func(t *testing.T) {
			ts.clock.Advance(auth.SecurityReauthWindow + time.Minute)
			res := laptop.postForm("/account/security/recovery-codes", url.Values{"code": {app.codes[0]}})
			doc := sfPage(t, res, http.StatusOK)
			if n := doc.Find("main ul.codes code").Length(); n != 10 {
				t.Fatalf("%d new recovery codes shown, want 10", n)
			}
			if sfEvents(t, ts, "recovery_code_used") != 1 {
				t.Fatal("the recovery code used to confirm is not recorded")
			}
		})

		s.run("the password still works", func(t *testing.T) {
			ts.clock.Advance(auth.SecurityReauthWindow + time.Minute)
			sfPrompt(t, laptop.get("/account/security"), http.StatusOK, "/account/security", true)
			res := laptop.postForm("/account/security", url.Values{"password": {"not my password"}})
			sfPrompt(t, res, http.StatusBadRequest, "/account/security", true)
			expectRedirect(t, laptop.postForm("/account/security", url.Values{"password": {testPassword}}), "/account/security")
		})
	})
}

func TestSecurityActions(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newSFServer(t, db, func(c *handlers.Config) {
			c.LoginLimitAccount = ratelimit.Rate{N: 100, Per: 15 * time.Minute}
		})
		laptop := ts.browser(t, firefoxMac)
		laptop.pageSignIn(sfAnn)
		app := sfEnrol(t, laptop, "Pixel")
		ts.createUser(t, "bob@example.com")
		bob := ts.browser(t, chromeAndroid)
		bob.pageSignIn("bob@example.com")
		bobApp := sfEnrol(t, bob, "Bob's phone")
		_, bobPending, _ := sfEnrolPage(t, bob.page("/account/security", "/account/security/totp", nil), http.StatusOK)
		s := &steps{t: t}
		s.use(laptop, bob)
		factorRows := func(t *testing.T) string {
			return ts.rows(t, "SELECT id || ' ' || name || ' ' || CASE WHEN confirmed_at IS NULL THEN 'pending' ELSE 'on' END FROM factors ORDER BY id")
		}

		s.run("rename", func(t *testing.T) {
			laptop.get("/account/security")
			expectRedirect(t, laptop.postForm("/account/security/factors/"+app.factorID+"/rename", url.Values{"name": {"Ann's Pixel 8"}}),
				"/account/security?done=factor-renamed")
			if got := ts.queryString(t, "SELECT name FROM factors WHERE id = ?", app.factorID); got != "Ann's Pixel 8" {
				t.Fatalf("name %q", got)
			}
			before := factorRows(t)
			for _, name := range []string{"", "   ", strings.Repeat("n", 65), "tab\there", "bell\a"} {
				res := laptop.postForm("/account/security/factors/"+app.factorID+"/rename", url.Values{"name": {name}})
				if res.StatusCode != http.StatusBadRequest {
					t.Fatalf("name %q: %d, want 400", name, res.StatusCode)
				}
				sfPage(t, res, http.StatusBadRequest)
			}
			for _, id := range []string{bobApp.factorID, bobPending, "x", strings.Repeat("A", 22), "%00", url.PathEscape("ü€") + strings.Repeat("A", 18)} {
				res := laptop.postForm("/account/security/factors/"+id+"/rename", url.Values{"name": {"Mine now"}})
				sfPage(t, res, http.StatusNotFound)
			}
			if after := factorRows(t); after != before {
				t.Fatalf("refused renames changed the factors:\n%s\n%s", before, after)
			}
		})

		s.run("remove another user's factor", func(t *testing.T) {
			before := factorRows(t)
			laptop.get("/account/security")
			for _, id := range []string{bobApp.factorID, bobPending, "nope", strings.Repeat("z", 300)} {
				sfPage(t, laptop.postForm("/account/security/factors/"+id+"/delete", nil), http.StatusNotFound)
			}
			if after := factorRows(t); after != before {
				t.Fatalf("refused removals changed the factors:\n%s\n%s", before, after)
			}
		})

		s.run("confirm refuses what is not a waiting enrolment of this person", func(t *testing.T) {
			laptop.get("/account/security")
			before := factorRows(t)
			for _, factor := range []string{"", "garbage", bobPending, bobApp.factorID} {
				res := laptop.postForm("/account/security/totp/confirm", url.Values{"factor": {factor}, "name": {"x"}, "code": {sfCode(t, ts, app.secret, 0)}})
				expectRedirect(t, res, "/account/security?done=enrolment-expired")
			}
			res := laptop.postForm("/account/security/totp/confirm", url.Values{"factor": {app.factorID}, "name": {"x"}, "code": {sfCode(t, ts, app.secret, 0)}})
			expectRedirect(t, res, "/account/security?done=totp-already-on-codes") // her own app, on already
			if after := factorRows(t); after != before {
				t.Fatalf("refused confirmations changed the factors:\n%s\n%s", before, after)
			}
			_, pending, secret := sfEnrolPage(t, laptop.page("/account/security", "/account/security/totp", nil), http.StatusOK)
			before = factorRows(t)
			for _, c := range []struct{ name, code string }{
				{strings.Repeat("n", 65), sfCode(t, ts, secret, 0)},
				{"Tablet", strings.Repeat("1", 10<<10)},
				{"Tablet", "1234567"},
				{"Tablet", ""},
				{"Tablet", sfCode(t, ts, secret, -2)},
			} {
				res := laptop.postForm("/account/security/totp/confirm", url.Values{"factor": {pending}, "name": {c.name}, "code": {c.code}})
				if _, again, _ := sfEnrolPage(t, res, http.StatusBadRequest); again != pending {
					t.Fatalf("name %.10q code %.10q: the page shows enrolment %q, want %q", c.name, c.code, again, pending)
				}
			}
			if after := factorRows(t); after != before {
				t.Fatalf("refused confirmations changed the factors:\n%s\n%s", before, after)
			}
			// An enrolment left for more than 30 minutes is gone.
			ts.clock.Advance(31 * time.Minute)
			laptop.get("/devices")
			expectRedirect(t, laptop.postForm("/account/security/totp/confirm", url.Values{"factor": {pending}, "code": {sfCode(t, ts, secret, 0)}}),
				"/account/security?done=enrolment-expired")
			laptop.get("/devices")
			if err := laptopReauth(t, laptop); err != "" {
				t.Fatal(err)
			}
		})

		s.run("new recovery codes void the old set", func(t *testing.T) {
			res := laptop.page("/account/security", "/account/security/recovery-codes", nil)
			var fresh []string
			sfPage(t, res, http.StatusOK).Find("main ul.codes code").Each(func(_ int, s *goquery.Selection) { fresh = append(fresh, text(s)) })
			if len(fresh) != 10 || slices.ContainsFunc(fresh, func(c string) bool { return slices.Contains(app.codes, c) }) {
				t.Fatalf("new codes %q (old %q)", fresh, app.codes)
			}
			phone := ts.newClient(t)
			challenge := sfAPILogin(t, phone, nil)
			expectAPIError(t, sfAPISecondStep(phone, challenge, app.codes[5]), http.StatusUnauthorized, "invalid_code")
			if res := sfAPISecondStep(phone, challenge, fresh[5]); res.StatusCode != http.StatusOK {
				t.Fatalf("a new code: %d %s", res.StatusCode, res.body)
			}
		})

		s.run("removing the last factor: the password alone signs in", func(t *testing.T) {
			res := laptop.page("/account/security", "/account/security/factors/"+app.factorID+"/delete", nil)
			expectRedirect(t, res, "/account/security?done=factor-removed-last")
			for _, q := range []string{"SELECT COUNT(*) FROM factors WHERE confirmed_at IS NOT NULL AND user_id = (SELECT id FROM users WHERE email = 'ann@example.com')",
				"SELECT COUNT(*) FROM recovery_codes WHERE user_id = (SELECT id FROM users WHERE email = 'ann@example.com')"} {
				if n := db.Count(t, q); n != 0 {
					t.Fatalf("%s: %d", q, n)
				}
			}
			if db.Count(t, "SELECT COUNT(*) FROM factors WHERE id = ?", bobApp.factorID) != 1 || db.Count(t, "SELECT COUNT(*) FROM recovery_codes") != 10 {
				t.Fatal("Bob's factor or codes went with Ann's")
			}
			phone := ts.newClient(t)
			if access := phone.apiSignIn(sfAnn); !slices.Equal(amrClaim(t, access), []string{"pwd"}) {
				t.Fatal("the password alone signs in, with amr [pwd]")
			}
			// Without a factor there are no codes to make.
			expectRedirect(t, laptop.page("/account/security", "/account/security/recovery-codes", nil), "/account/security")
			if n := db.Count(t, "SELECT COUNT(*) FROM recovery_codes"); n != 10 {
				t.Fatalf("%d recovery codes, want only Bob's 10", n)
			}
		})
	})
}

// laptopReauth enters the password on the security page's prompt, when it asks; "" when all went well.
func laptopReauth(t *testing.T, c *client) string {
	t.Helper()
	res := c.get("/account/security")
	if res.Doc(t).Find(`main input[name="password"]`).Length() == 0 {
		return ""
	}
	if res := c.postForm("/account/security", url.Values{"password": {testPassword}}); res.StatusCode != http.StatusSeeOther {
		return "the password on the prompt: " + res.Status
	}
	return ""
}

// TestSecurityRoutesNeverFail: odd input to every route of the security page and the second step
// answers below 500, signed in or not.
func TestSecurityRoutesNeverFail(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newSFServer(t, db, func(c *handlers.Config) {
			c.LoginLimitAccount = ratelimit.Rate{N: 1000, Per: 15 * time.Minute}
			c.LoginLimitIP = ratelimit.Rate{N: 1000, Per: 15 * time.Minute}
		})
		laptop := ts.browser(t, firefoxMac)
		laptop.pageSignIn(sfAnn)
		app := sfEnrol(t, laptop, "Pixel")
		stranger := ts.browser(t, chromeAndroid)
		stranger.get("/login")

		odd := []string{"", "x", strings.Repeat("9", 10<<10), "\x00", "\xff\xfe", "ü€𝄞", "<script>", "' OR 1=1 --", "%", "../../etc"}
		routes := []string{
			"/account/security", "/account/security/totp", "/account/security/totp/confirm", "/account/security/recovery-codes",
			"/account/security/factors/" + app.factorID + "/rename", "/account/security/factors/%25/rename",
			"/account/security/factors/" + strings.Repeat("A", 300) + "/delete", "/login/second-factor",
		}
		for _, c := range []*client{laptop, stranger} {
			for _, route := range routes {
				for _, v := range odd {
					form := url.Values{"factor": {v}, "name": {v}, "code": {v}, "password": {v}, "credential": {v}, "next": {v}}
					res := c.postForm(route, form)
					if res.StatusCode >= 500 {
						t.Fatalf("POST %s with %.20q: %d %.300s", route, v, res.StatusCode, res.body)
					}
				}
				if res := c.get(route); res.StatusCode >= 500 {
					t.Fatalf("GET %s: %d", route, res.StatusCode)
				}
			}
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM factors WHERE confirmed_at IS NOT NULL"); n != 1 {
			t.Fatalf("%d factors on after odd input, want Ann's one", n)
		}
	})
}
