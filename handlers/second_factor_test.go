package handlers_test

import (
	"crypto/sha256"
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

// The second step of a sign-in, through the pages and the app API: Ann turns on an authenticator
// app on the security page, and from then on her password leads to a second step that only a code
// from the app (computed here from the secret the page showed) or a recovery code finishes.

const sfAnn = "ann@example.com"

// newSFServer is a test server with Ann's account, its clock 10 s into a TOTP time step.
func newSFServer(t *testing.T, db *testdb.DB, opts ...serverOption) *testServer {
	t.Helper()
	ts := newTestServer(t, db, opts...)
	sfAlign(ts)
	ts.createUser(t, sfAnn)
	return ts
}

// sfAlign moves the clock to 10 s into the next TOTP time step, so that "this step" is never
// ambiguous.
func sfAlign(ts *testServer) {
	ts.clock.Set(time.Unix((ts.clock.Now().Unix()/30+1)*30+10, 0).UTC())
}

// sfCode is what Ann's phone shows for secret, skew time steps away from the server's now.
func sfCode(t *testing.T, ts *testServer, secret string, skew int) string {
	t.Helper()
	code, err := auth.TOTPCode(secret, ts.clock.Now().Add(time.Duration(skew)*30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// sfApp is an authenticator app turned on through the security pages.
type sfApp struct {
	factorID, secret string
	codes            []string // the recovery codes the page showed, for the account's first factor
}

// sfEnrol turns on an authenticator app for c's account through the security pages, as a person
// does: set up, read the secret the page shows, type the app's code. The clock then moves on a
// time step, so that the confirming code is spent.
func sfEnrol(t *testing.T, c *client, name string) sfApp {
	t.Helper()
	res := c.page("/account/security", "/account/security/totp", nil)
	doc, factorID, secret := sfEnrolPage(t, res, http.StatusOK)
	if !strings.Contains(res.Header.Get("Cache-Control"), "no-store") {
		t.Fatalf("the page with the secret may be cached: Cache-Control %q", res.Header.Get("Cache-Control"))
	}
	app := sfApp{factorID: factorID, secret: secret}
	if doc.Find("main svg path").Length() == 0 || doc.Find(`img[src^="http"], script[src^="http"]`).Length() != 0 {
		t.Fatal("the QR code is not drawn on the server as inline SVG")
	}
	res = c.postForm("/account/security/totp/confirm", url.Values{"factor": {app.factorID}, "name": {name}, "code": {sfCode(t, c.ts, app.secret, 0)}})
	if res.StatusCode == http.StatusOK {
		doc = sfPage(t, res, http.StatusOK)
		if !strings.Contains(res.Header.Get("Cache-Control"), "no-store") {
			t.Fatalf("the page with the recovery codes may be cached: Cache-Control %q", res.Header.Get("Cache-Control"))
		}
		doc.Find("main ul.codes code").Each(func(_ int, s *goquery.Selection) { app.codes = append(app.codes, text(s)) })
	} else {
		expectRedirect(t, res, "/account/security?done=totp-added")
	}
	c.ts.clock.Advance(30 * time.Second)
	return app
}

// sfPage checks the status of an HTML answer and returns the page. The tests find what a person
// uses by its function (a form's action, an input's name), not by wording the views may change.
func sfPage(t *testing.T, res *response, status int) *goquery.Document {
	t.Helper()
	if res.StatusCode != status || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("%d %q, want an HTML page with %d; Location %q; body: %.500s", res.StatusCode, res.Header.Get("Content-Type"), status, res.Header.Get("Location"), res.body)
	}
	return res.Doc(t)
}

// sfEnrolPage: an enrolment page, with its factor and secret.
func sfEnrolPage(t *testing.T, res *response, status int) (doc *goquery.Document, factorID, secret string) {
	t.Helper()
	doc = sfPage(t, res, status)
	form := doc.Find(`main form[action="/account/security/totp/confirm"]`)
	factorID, _ = form.Find(`input[name="factor"]`).Attr("value")
	secret = sfSecretOf(doc)
	if form.Length() != 1 || factorID == "" || secret == "" || form.Find(`input[name="code"]`).Length() != 1 {
		t.Fatalf("not an enrolment page with a secret and a code field: %.800s", res.body)
	}
	return doc, factorID, secret
}

// sfCodeError: the page refused a second-factor code, saying so.
func sfCodeError(t *testing.T, res *response, status int) *goquery.Document {
	t.Helper()
	doc := sfPage(t, res, status)
	if !strings.Contains(mainText(t, res), "That code is not right") {
		t.Fatalf("the page does not say the code is not right: %q", mainText(t, res))
	}
	return doc
}

// sfSecretOf reads the secret an enrolment page shows as text, as a person types it into an app:
// without the spaces between its groups.
func sfSecretOf(doc *goquery.Document) string {
	return strings.Join(strings.Fields(doc.Find("main code.secret").Text()), "")
}

// sfLogin enters Ann's password on the sign-in page and expects the second step.
func sfLogin(t *testing.T, c *client, next string) {
	t.Helper()
	form := url.Values{"email": {sfAnn}, "password": {testPassword}}
	location := "/login/second-factor"
	if next != "" {
		form.Set("next", next)
		location += "?next=" + url.QueryEscape(next)
	}
	res := c.page("/login", "/login", form)
	expectRedirect(t, res, location)
	if ck := res.cookie("gh_2fa"); ck == nil || !ck.HttpOnly || ck.MaxAge != int(auth.ChallengeTTL/time.Second) || !strings.HasPrefix(ck.Value, "ghc_") {
		t.Fatalf("the second step's cookie: %+v", ck)
	}
	if res.cookie("gh_refresh") != nil || res.cookie("gh_access") != nil {
		t.Fatal("the password alone set session cookies")
	}
}

// sfSecondStep loads the second step (which must answer 200) and posts code to it.
func sfSecondStep(t *testing.T, c *client, code string) *response {
	t.Helper()
	return sfSecondStepAt(t, c, "/login/second-factor", code)
}

// sfSecondStepAt is sfSecondStep from the page at from (where a sign-in sent the browser).
func sfSecondStepAt(t *testing.T, c *client, from, code string) *response {
	t.Helper()
	doc := sfPage(t, c.get(from), http.StatusOK)
	if doc.Find(`main form[action="/login/second-factor"] input[name="code"]`).Length() != 1 {
		t.Fatal("the second step has no code field")
	}
	form := url.Values{"code": {code}}
	if next, ok := doc.Find(`main form[action="/login/second-factor"] input[name="next"]`).Attr("value"); ok && next != "" {
		form.Set("next", next) // as the browser posts the form's hidden field
	}
	return c.postForm("/login/second-factor", form)
}

// sfAPILogin signs Ann in through the app API and returns the challenge of the second step.
func sfAPILogin(t *testing.T, c *client, body map[string]string) string {
	t.Helper()
	if body == nil {
		body = map[string]string{}
	}
	body["email"], body["password"] = sfAnn, testPassword
	res := c.postJSON("/auth/login", body, nil)
	m := res.JSON(t)
	challenge, _ := m["challenge"].(string)
	if res.StatusCode != http.StatusUnauthorized || m["error"] != "second_factor_required" || !strings.HasPrefix(challenge, "ghc_") || m["message"] == "" {
		t.Fatalf("API login with a second factor: %d %s", res.StatusCode, res.body)
	}
	if res.cookie("gh_refresh") != nil || m["access_token"] != nil {
		t.Fatal("the password alone handed out tokens")
	}
	return challenge
}

// sfHash is how a challenge is stored.
func sfHash(challenge string) []byte {
	sum := sha256.Sum256([]byte(challenge))
	return sum[:]
}

func sfAPISecondStep(c *client, challenge, code string) *response {
	return c.postJSON("/auth/second-factor", map[string]string{"challenge": challenge, "code": code}, nil)
}

// expectAPIError: the contract's error shape with status and code.
func expectAPIError(t *testing.T, res *response, status int, code string) {
	t.Helper()
	if res.StatusCode != status || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("%d %q %.300s, want %d %s", res.StatusCode, res.Header.Get("Content-Type"), res.body, status, code)
	}
	m := res.JSON(t)
	if m["error"] != code || m["message"] == nil || m["message"] == "" {
		t.Fatalf("body %s, want {\"error\":%q,\"message\":…}", res.body, code)
	}
}

func amrClaim(t *testing.T, jwt string) []string {
	t.Helper()
	var out []string
	list, _ := claims(t, jwt)["amr"].([]any)
	for _, v := range list {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}

// sfState sums up what a second step can change: sessions, used codes and time steps, challenges
// used, and the security events other than the failures that are recorded on purpose.
func sfState(t *testing.T, ts *testServer) string {
	t.Helper()
	return strings.Join([]string{
		ts.rows(t, "SELECT CAST(COUNT(*) AS TEXT) FROM device_sessions"),
		ts.rows(t, "SELECT CAST(COUNT(*) AS TEXT) FROM device_sessions WHERE revoked_at IS NULL"),
		ts.rows(t, "SELECT CAST(COUNT(*) AS TEXT) FROM recovery_codes WHERE used_at IS NOT NULL"),
		ts.rows(t, "SELECT CAST(last_step AS TEXT) FROM factors ORDER BY id"),
		ts.rows(t, "SELECT CAST(COUNT(*) AS TEXT) FROM auth_challenges WHERE used_at IS NOT NULL"),
		ts.rows(t, "SELECT CAST(COUNT(*) AS TEXT) FROM security_events WHERE kind NOT IN ('second_factor_failed', 'sign_in_failed')"),
	}, ",")
}

func TestSecondFactorPages(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newSFServer(t, db, func(c *handlers.Config) {
			c.LoginLimitAccount = ratelimit.Rate{N: 100, Per: 15 * time.Minute} // the limit has its own test
		})
		laptop := ts.browser(t, firefoxMac)
		laptop.pageSignIn(sfAnn)
		s := &steps{t: t}
		s.use(laptop)
		var app sfApp

		s.run("the security page offers an authenticator app", func(t *testing.T) {
			doc := sfPage(t, laptop.get("/account/security"), http.StatusOK)
			if doc.Find(`main form[action="/account/security/totp"]`).Length() != 1 ||
				doc.Find(`main form[action$="/delete"]`).Length() != 0 || doc.Find(`main form[action="/account/security/recovery-codes"]`).Length() != 0 {
				t.Fatal("with no factor yet, the page offers to add an app and nothing to remove")
			}
		})

		s.run("a wrong first code keeps the enrolment waiting", func(t *testing.T) {
			_, factor, secret := sfEnrolPage(t, laptop.page("/account/security", "/account/security/totp", nil), http.StatusOK)
			res := laptop.postForm("/account/security/totp/confirm", url.Values{"factor": {factor}, "name": {"Phone"}, "code": {sfCode(t, ts, secret, 4)}})
			sfCodeError(t, res, http.StatusBadRequest)
			if _, again, shown := sfEnrolPage(t, res, http.StatusBadRequest); again != factor || shown != secret {
				t.Fatalf("after a wrong code the page shows enrolment %q with %q, was %q with %q", again, shown, factor, secret)
			}
			if n := db.Count(t, "SELECT COUNT(*) FROM factors WHERE confirmed_at IS NOT NULL"); n != 0 {
				t.Fatal("a wrong code turned the app on")
			}
		})

		s.run("the right code turns it on and shows ten recovery codes once", func(t *testing.T) {
			app = sfEnrol(t, laptop, "Pixel")
			if len(app.codes) != 10 {
				t.Fatalf("%d recovery codes shown, want 10: %q", len(app.codes), app.codes)
			}
			distinct := slices.Clone(app.codes)
			slices.Sort(distinct)
			if len(slices.Compact(distinct)) != 10 {
				t.Fatalf("recovery codes repeat: %q", app.codes)
			}
			res := laptop.get("/account/security")
			doc := sfPage(t, res, http.StatusOK)
			if !strings.Contains(mainText(t, res), "Pixel") ||
				doc.Find(`main form[action="/account/security/factors/`+app.factorID+`/delete"]`).Length() != 1 ||
				doc.Find(`main form[action="/account/security/factors/`+app.factorID+`/rename"]`).Length() != 1 {
				t.Fatal("the security page does not list the app with ways to rename and remove it")
			}
			for _, code := range app.codes {
				if strings.Contains(string(res.body), code) {
					t.Fatal("the security page shows a recovery code again")
				}
			}
		})

		phone := ts.browser(t, chromeAndroid)
		s.use(phone)
		s.run("the password alone starts no session", func(t *testing.T) {
			before := sfState(t, ts)
			sfLogin(t, phone, "")
			if after := sfState(t, ts); after != before {
				t.Fatalf("the password changed %s to %s", before, after)
			}
			expectSignedOut(t, phone)
			doc := sfPage(t, phone.get("/login/second-factor"), http.StatusOK)
			if doc.Find(`main form[action="/login/second-factor"] input[name="code"][autocomplete="one-time-code"]`).Length() != 1 {
				t.Fatal("the second step does not ask for a code")
			}
		})

		s.run("a wrong code is refused on the page", func(t *testing.T) {
			before := sfState(t, ts)
			for _, code := range []string{"000000", "1234567", "abcdef", strings.Repeat("7", 10<<10)} {
				sfCodeError(t, sfSecondStep(t, phone, code), http.StatusUnauthorized)
			}
			if after := sfState(t, ts); after != before {
				t.Fatalf("wrong codes changed %s to %s", before, after)
			}
		})

		s.run("the right code signs in, with amr pwd otp", func(t *testing.T) {
			res := sfSecondStep(t, phone, sfCode(t, ts, app.secret, 0))
			expectRedirect(t, res, "/devices")
			if ck := res.cookie("gh_2fa"); ck == nil || ck.Value != "" {
				t.Fatalf("the second step's cookie is not cleared: %+v", ck)
			}
			expectSignedIn(t, phone)
			if amr := amrClaim(t, phone.cookieValue("gh_access")); !slices.Equal(amr, []string{"pwd", "otp"}) {
				t.Fatalf("amr %q", amr)
			}
			expectRedirect(t, phone.get("/login/second-factor"), "/login?done=second-step-expired")
		})

		tablet := ts.browser(t, chromeAndroid)
		s.use(tablet)
		s.run("a recovery code signs in and goes to next", func(t *testing.T) {
			sfLogin(t, tablet, "/account")
			code := strings.ToUpper(strings.ReplaceAll(app.codes[0], "-", " "))
			expectRedirect(t, sfSecondStepAt(t, tablet, "/login/second-factor?next=%2Faccount", code), "/account")
			expectSignedIn(t, tablet)
			if amr := amrClaim(t, tablet.cookieValue("gh_access")); !slices.Equal(amr, []string{"pwd", "rec"}) {
				t.Fatalf("amr %q", amr)
			}
			if n := db.Count(t, "SELECT COUNT(*) FROM security_events WHERE kind = 'recovery_code_used'"); n != 1 {
				t.Fatalf("%d recovery_code_used events", n)
			}
			// Used once: refused after.
			other := ts.browser(t, firefoxMac)
			sfLogin(t, other, "")
			sfCodeError(t, sfSecondStep(t, other, app.codes[0]), http.StatusUnauthorized)
		})

		s.run("next never leaves the portal", func(t *testing.T) {
			other := ts.browser(t, firefoxMac)
			evil := "https://evil.example/phish"
			sfLogin(t, other, evil)
			expectRedirect(t, sfSecondStepAt(t, other, "/login/second-factor?next="+url.QueryEscape(evil), app.codes[1]), "/devices")
		})

		s.run("a dead second step sends the browser back to sign in", func(t *testing.T) {
			other := ts.browser(t, firefoxMac)
			sfLogin(t, other, "")
			for range auth.MaxChallengeAttempts {
				sfCodeError(t, sfSecondStep(t, other, "000000"), http.StatusUnauthorized)
			}
			res := other.postForm("/login/second-factor", url.Values{"code": {sfCode(t, ts, app.secret, 0)}})
			expectRedirect(t, res, "/login?done=second-step-expired")
			expectSignedOut(t, other)
			if res := other.get("/login?done=second-step-expired"); !strings.Contains(mainText(t, res), "That sign-in expired or was already used") {
				t.Fatalf("the sign-in page does not say why: %q", mainText(t, res))
			}

			late := ts.browser(t, firefoxMac)
			sfLogin(t, late, "")
			ts.clock.Advance(auth.ChallengeTTL + time.Second)
			late.get("/login") // for a CSRF token
			expectRedirect(t, late.postForm("/login/second-factor", url.Values{"code": {sfCode(t, ts, app.secret, 0)}}), "/login?done=second-step-expired")
			expectSignedOut(t, late)
		})
	})
}

// TestTOTPSetUpSubmittedTwice: a second click on "Turn on" (or a reload that posts again) arrives
// after the first turned the app on, whose answer never showed. It changes nothing and says the
// app is on; when the app is the account's first factor, that lost answer held the recovery
// codes, and the notice says how to get a new set.
func TestTOTPSetUpSubmittedTwice(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newSFServer(t, db)
		laptop := ts.browser(t, firefoxMac)
		laptop.pageSignIn(sfAnn)
		for _, tc := range []struct {
			name, done, notice string
		}{
			{"Pixel", "totp-already-on-codes", "Your authenticator app is already on. If you did not see your recovery codes, make new ones below: the set you missed stops working."},
			{"Backup phone", "totp-already-on", "Your authenticator app is already on."},
		} {
			app := sfEnrol(t, laptop, tc.name)
			before := sfState(t, ts)
			codes := ts.rows(t, "SELECT CAST(COUNT(*) AS TEXT) FROM recovery_codes")
			again := url.Values{"factor": {app.factorID}, "name": {tc.name}, "code": {sfCode(t, ts, app.secret, -1)}}
			expectRedirect(t, laptop.page("/account/security", "/account/security/totp/confirm", again), "/account/security?done="+tc.done)
			notice := text(sfPage(t, laptop.get("/account/security?done="+tc.done), http.StatusOK).Find(`[role="status"]`))
			if notice != tc.notice {
				t.Fatalf("%s: the notice says %q, want %q", tc.name, notice, tc.notice)
			}
			if after := sfState(t, ts); after != before || ts.rows(t, "SELECT CAST(COUNT(*) AS TEXT) FROM recovery_codes") != codes {
				t.Fatalf("%s: the second submit changed %s to %s, or the recovery codes", tc.name, before, after)
			}
		}
	})
}

func TestSecondFactorAPI(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newSFServer(t, db)
		laptop := ts.browser(t, firefoxMac)
		laptop.pageSignIn(sfAnn)
		app := sfEnrol(t, laptop, "Pixel")
		phone := ts.newClient(t)

		challenge := sfAPILogin(t, phone, map[string]string{"device_name": "Ann's Pixel"})
		res := sfAPISecondStep(phone, challenge, "000000")
		expectAPIError(t, res, http.StatusUnauthorized, "invalid_code")
		if n := db.Count(t, "SELECT attempts FROM auth_challenges WHERE used_at IS NULL"); n != 1 {
			t.Fatalf("a wrong code counted %d attempts", n)
		}

		res = sfAPISecondStep(phone, challenge, sfCode(t, ts, app.secret, 0))
		if res.StatusCode != http.StatusOK || res.cookie("gh_refresh") == nil {
			t.Fatalf("the right code: %d %s", res.StatusCode, res.body)
		}
		body := res.JSON(t)
		access, _ := body["access_token"].(string)
		if body["token_type"] != "Bearer" || body["expires_in"] != float64(600) {
			t.Fatalf("token body %s", res.body)
		}
		if amr := amrClaim(t, access); !slices.Equal(amr, []string{"pwd", "otp"}) {
			t.Fatalf("amr %q", amr)
		}
		me := phone.getBearer("/api/me", access)
		if me.StatusCode != http.StatusOK || me.JSON(t)["email"] != sfAnn {
			t.Fatalf("/api/me: %d %s", me.StatusCode, me.body)
		}
		if name := ts.deviceName(t, me.JSON(t)["session_id"].(string)); name != "Ann's Pixel" {
			t.Fatalf("the device name given at the password step was lost: %q", name)
		}
		// The session refreshes with its amr.
		refreshed := phone.do(http.MethodPost, "/auth/refresh", nil, nil)
		if refreshed.StatusCode != http.StatusOK || !slices.Equal(amrClaim(t, refreshed.JSON(t)["access_token"].(string)), []string{"pwd", "otp"}) {
			t.Fatalf("refresh: %d %s", refreshed.StatusCode, refreshed.body)
		}

		// Used: the challenge is gone, and the code is spent for a new one.
		expectAPIError(t, sfAPISecondStep(phone, challenge, sfCode(t, ts, app.secret, 0)), http.StatusUnauthorized, "invalid_token")
		again := sfAPILogin(t, phone, nil)
		expectAPIError(t, sfAPISecondStep(phone, again, sfCode(t, ts, app.secret, 0)), http.StatusUnauthorized, "invalid_code")

		// One step of skew either way works; two do not.
		ts.clock.Advance(5 * time.Minute)
		for _, c := range []struct {
			skew int
			want int
		}{{-2, 401}, {+2, 401}, {-1, 200}, {+1, 200}} {
			ts.clock.Advance(3 * time.Minute)
			res := sfAPISecondStep(phone, sfAPILogin(t, phone, nil), sfCode(t, ts, app.secret, c.skew))
			if res.StatusCode != c.want {
				t.Fatalf("skew %d steps: %d %s, want %d", c.skew, res.StatusCode, res.body, c.want)
			}
		}

		// An app that names its device keeps it across the two steps, and a new sign-in of that
		// device replaces its session.
		device := map[string]string{"X-Device-Id": "ann-phone-app-0001"}
		var sids []string
		for range 2 {
			ts.clock.Advance(time.Minute) // past the step of the last code (the skew test took one ahead)
			res := phone.postJSON("/auth/login", map[string]string{"email": sfAnn, "password": testPassword}, device)
			challenge, _ := res.JSON(t)["challenge"].(string)
			res = phone.postJSON("/auth/second-factor", map[string]string{"challenge": challenge, "code": sfCode(t, ts, app.secret, 0)}, device)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("second step of a named device: %d %s", res.StatusCode, res.body)
			}
			sids = append(sids, claims(t, res.JSON(t)["access_token"].(string))["sid"].(string))
		}
		if live := ts.rows(t, "SELECT id FROM device_sessions WHERE device_id = 'ann-phone-app-0001' AND revoked_at IS NULL"); live != sids[1] {
			t.Fatalf("live sessions of the named device: %q, want only the newest %q", live, sids[1])
		}

		// Another user's challenge does not take Ann's code, nor hers his.
		ts.createUser(t, "bob@example.com")
		bob := ts.browser(t, firefoxMac)
		bob.pageSignIn("bob@example.com")
		bobApp := sfEnrol(t, bob, "Bob's phone")
		bobRes := phone.postJSON("/auth/login", map[string]string{"email": "bob@example.com", "password": testPassword}, nil)
		bobChallenge, _ := bobRes.JSON(t)["challenge"].(string)
		annChallenge := sfAPILogin(t, phone, nil)
		before := sfState(t, ts)
		expectAPIError(t, sfAPISecondStep(phone, bobChallenge, app.codes[1]), http.StatusUnauthorized, "invalid_code")
		expectAPIError(t, sfAPISecondStep(phone, annChallenge, bobApp.codes[0]), http.StatusUnauthorized, "invalid_code")
		if after := sfState(t, ts); after != before {
			t.Fatalf("crossed codes changed %s to %s", before, after)
		}
		res = sfAPISecondStep(phone, bobChallenge, bobApp.codes[0])
		if res.StatusCode != http.StatusOK || phone.getBearer("/api/me", res.JSON(t)["access_token"].(string)).JSON(t)["email"] != "bob@example.com" {
			t.Fatalf("Bob's own code: %d %s", res.StatusCode, res.body)
		}
	})
}

// TestSecondFactorEndsTheSessionThisBrowserHeld: as with a password alone, a sign-in finished at the
// second step ends the session of another account whose cookies the browser still held.
func TestSecondFactorEndsTheSessionThisBrowserHeld(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newSFServer(t, db)
		laptop := ts.browser(t, firefoxMac)
		laptop.pageSignIn(sfAnn)
		app := sfEnrol(t, laptop, "Pixel")
		ts.createUser(t, "bob@example.com")
		bobLive := func() int64 {
			return db.Count(t, `SELECT COUNT(*) FROM device_sessions s JOIN users u ON u.id = s.user_id WHERE u.email = 'bob@example.com' AND s.revoked_at IS NULL`)
		}

		page := ts.browser(t, chromeAndroid)
		page.pageSignIn("bob@example.com")
		page.get("/password/forgot") // a form of another tab: the sign-in form is posted while Bob's cookies are held
		expectRedirect(t, page.postForm("/login", url.Values{"email": {sfAnn}, "password": {testPassword}}), "/login/second-factor")
		expectRedirect(t, sfSecondStep(t, page, app.codes[0]), "/devices")
		if n := bobLive(); n != 0 {
			t.Fatalf("Bob still has %d live sessions on a browser now signed in as Ann (page)", n)
		}

		api := ts.newClient(t)
		api.apiSignIn("bob@example.com")
		res := sfAPISecondStep(api, sfAPILogin(t, api, nil), app.codes[1])
		if res.StatusCode != http.StatusOK {
			t.Fatalf("second step: %d %s", res.StatusCode, res.body)
		}
		if n := bobLive(); n != 0 {
			t.Fatalf("Bob still has %d live sessions on a browser now signed in as Ann (API)", n)
		}
	})
}

// TestSecondFactorBadInput: whatever arrives at the second step answers 4xx in the contract's
// shape, and changes nothing but the count of wrong codes.
func TestSecondFactorBadInput(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newSFServer(t, db, func(c *handlers.Config) {
			c.LoginLimitAccount = ratelimit.Rate{N: 1000, Per: 15 * time.Minute} // the limit has its own test
			c.LoginLimitIP = ratelimit.Rate{N: 1000, Per: 15 * time.Minute}
		})
		laptop := ts.browser(t, firefoxMac)
		laptop.pageSignIn(sfAnn)
		app := sfEnrol(t, laptop, "Pixel")
		phone := ts.newClient(t)
		const live = "{live}" // replaced by a live challenge

		for _, c := range []struct {
			name   string
			body   string
			status int
			code   string
			wrong  bool // counts as a wrong code against the challenge
		}{
			{"empty body", ``, 400, "invalid_request", false},
			{"malformed JSON", `{"challenge":`, 400, "invalid_request", false},
			{"an array", `[]`, 400, "invalid_request", false},
			{"null", `null`, 400, "invalid_request", false},
			{"two objects", `{"challenge":"{live}","code":"000000"}{}`, 400, "invalid_request", false},
			{"a number for the code", `{"challenge":"{live}","code":123456}`, 400, "invalid_request", false},
			{"no challenge", `{"code":"123456"}`, 400, "invalid_request", false},
			{"no code", `{"challenge":"{live}"}`, 400, "invalid_request", false},
			{"empty strings", `{"challenge":"","code":""}`, 400, "invalid_request", false},
			{"a device name too long", `{"challenge":"{live}","code":"123456","device_name":"` + strings.Repeat("n", 65) + `"}`, 400, "invalid_request", false},
			{"garbage challenge", `{"challenge":"ghc_junk","code":"123456"}`, 401, "invalid_token", false},
			{"challenge one short", `{"challenge":"ghc_` + strings.Repeat("A", 42) + `","code":"123456"}`, 401, "invalid_token", false},
			{"challenge never issued", `{"challenge":"ghc_` + strings.Repeat("A", 43) + `","code":"123456"}`, 401, "invalid_token", false},
			{"challenge in unicode", `{"challenge":"ghc_` + strings.Repeat("é", 21) + `A","code":"123456"}`, 401, "invalid_token", false},
			{"challenge with escapes", `{"challenge":"ghc_\u0000\ud800` + strings.Repeat("A", 41) + `","code":"123456"}`, 401, "invalid_token", false},
			{"challenge of 10 KB", `{"challenge":"ghc_` + strings.Repeat("A", 10<<10) + `","code":"123456"}`, 401, "invalid_token", false},
			{"a refresh token as challenge", `{"challenge":"{refresh}","code":"123456"}`, 401, "invalid_token", false},
			{"seven digits", `{"challenge":"{live}","code":"1234567"}`, 401, "invalid_code", true},
			{"letters", `{"challenge":"{live}","code":"abcdef"}`, 401, "invalid_code", true},
			{"code of 10 KB", `{"challenge":"{live}","code":"` + strings.Repeat("1", 10<<10) + `"}`, 401, "invalid_code", true},
			{"code with control characters", `{"challenge":"{live}","code":"12\u00003456"}`, 401, "invalid_code", true},
			{"a recovery code cut short", `{"challenge":"{live}","code":"` + app.codes[0][:len(app.codes[0])-1] + `"}`, 401, "invalid_code", true},
		} {
			t.Run(c.name, func(t *testing.T) {
				phone.t = t
				challenge := sfAPILogin(t, phone, nil)
				body := strings.ReplaceAll(c.body, live, challenge)
				body = strings.ReplaceAll(body, "{refresh}", laptop.cookieValue("gh_refresh"))
				before := sfState(t, ts)
				res := phone.do(http.MethodPost, "/auth/second-factor", strings.NewReader(body), map[string]string{"Content-Type": "application/json"})
				expectAPIError(t, res, c.status, c.code)
				if res.cookie("gh_refresh") != nil {
					t.Fatal("a refused second step set a refresh cookie")
				}
				if after := sfState(t, ts); after != before {
					t.Fatalf("a refused second step changed %s to %s", before, after)
				}
				want := int64(0)
				if c.wrong {
					want = 1
				}
				if n := db.Count(t, "SELECT attempts FROM auth_challenges WHERE id_hash = ?", sfHash(challenge)); n != want {
					t.Fatalf("%d wrong codes counted against the challenge, want %d", n, want)
				}
				// The challenge still works with the right code.
				ts.clock.Advance(30 * time.Second)
				if res := sfAPISecondStep(phone, challenge, sfCode(t, ts, app.secret, 0)); res.StatusCode != http.StatusOK {
					t.Fatalf("the right code after it: %d %s", res.StatusCode, res.body)
				}
			})
		}

		t.Run("a body over the limit", func(t *testing.T) {
			phone.t = t
			challenge := sfAPILogin(t, phone, nil)
			body := `{"challenge":"` + challenge + `","code":"` + strings.Repeat("1", 70<<10) + `"}`
			res := phone.do(http.MethodPost, "/auth/second-factor", strings.NewReader(body), map[string]string{"Content-Type": "application/json"})
			expectAPIError(t, res, http.StatusRequestEntityTooLarge, "payload_too_large")
		})

		t.Run("the page", func(t *testing.T) {
			other := ts.browser(t, chromeAndroid)
			other.get("/login")
			before := sfState(t, ts)
			// No second step in this browser, or one that could never have been issued.
			for _, cookie := range []string{"", "ghc_junk", "ghc_" + strings.Repeat("A", 43), "%E2%82%AC" + strings.Repeat("A", 3000)} {
				if cookie != "" {
					other.setCookie("gh_2fa", cookie)
				}
				expectRedirect(t, other.get("/login/second-factor"), "/login?done=second-step-expired")
				expectRedirect(t, other.postForm("/login/second-factor", url.Values{"code": {sfCode(t, ts, app.secret, 0)}}), "/login?done=second-step-expired")
			}
			// A live one, with odd codes, or without the CSRF token.
			sfLogin(t, other, "")
			for _, code := range []string{"", "   "} {
				res := other.postForm("/login/second-factor", url.Values{"code": {code}})
				sfPage(t, res, http.StatusBadRequest)
				if !strings.Contains(mainText(t, res), "Enter the code") {
					t.Fatalf("an empty code: the page says %q", mainText(t, res))
				}
			}
			for _, code := range []string{"1234567", "abcdef", strings.Repeat("x", 10<<10), "\x00\xff"} {
				res := other.postForm("/login/second-factor", url.Values{"code": {code}})
				sfCodeError(t, res, http.StatusUnauthorized)
			}
			res := other.postRaw("/login/second-factor", url.Values{"code": {sfCode(t, ts, app.secret, 0)}}, nil)
			if res.StatusCode != http.StatusForbidden {
				t.Fatalf("without a CSRF token: %d", res.StatusCode)
			}
			if after := sfState(t, ts); after != before {
				t.Fatalf("refused second steps changed %s to %s", before, after)
			}
			expectSignedOut(t, other)
		})
	})
}

// TestSecondFactorLimit: wrong codes count against the account's limit of password checks, across
// challenges, pages and the API; past it even the right code waits.
func TestSecondFactorLimit(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newSFServer(t, db, func(c *handlers.Config) {
			c.LoginLimitAccount = ratelimit.Rate{N: 3, Per: 15 * time.Minute}
		})
		laptop := ts.browser(t, firefoxMac)
		laptop.pageSignIn(sfAnn)
		app := sfEnrol(t, laptop, "Pixel")
		phone := ts.newClient(t)

		// Right codes use nothing up.
		for range 4 {
			if res := sfAPISecondStep(phone, sfAPILogin(t, phone, nil), sfCode(t, ts, app.secret, 0)); res.StatusCode != http.StatusOK {
				t.Fatalf("a right code: %d %s", res.StatusCode, res.body)
			}
			ts.clock.Advance(30 * time.Second)
		}

		first := sfAPILogin(t, phone, nil)
		expectAPIError(t, sfAPISecondStep(phone, first, "000000"), http.StatusUnauthorized, "invalid_code")
		expectAPIError(t, sfAPISecondStep(phone, first, "111111"), http.StatusUnauthorized, "invalid_code")
		browser := ts.browser(t, chromeAndroid)
		sfLogin(t, browser, "")
		sfCodeError(t, sfSecondStep(t, browser, "222222"), http.StatusUnauthorized)

		before := sfState(t, ts)
		// A passkey's answer counts too: past the limit it is not even looked at.
		if res := browser.postForm("/login/second-factor", url.Values{"credential": {`{"id":"forged"}`}}); res.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("a passkey answer past the limit: %d, want 429", res.StatusCode)
		}
		second := sfAPILogin(t, phone, nil) // the password is not the code's counter
		res := sfAPISecondStep(phone, second, sfCode(t, ts, app.secret, 0))
		expectAPIError(t, res, http.StatusTooManyRequests, "rate_limited")
		if res.Header.Get("Retry-After") == "" {
			t.Fatal("no Retry-After")
		}
		res = sfSecondStep(t, browser, sfCode(t, ts, app.secret, 0))
		if res.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("the page past the limit: %d", res.StatusCode)
		}
		if after := sfState(t, ts); after != before {
			t.Fatalf("refused codes changed %s to %s", before, after)
		}
		if n := db.Count(t, "SELECT attempts FROM auth_challenges WHERE id_hash = ?", sfHash(second)); n != 0 {
			t.Fatalf("a code the limit refused counted %d attempts against its challenge", n)
		}

		// Another account is not held up.
		ts.createUser(t, "bob@example.com")
		bob := ts.newClient(t)
		bob.apiSignIn("bob@example.com")

		ts.clock.Advance(15 * time.Minute)
		if res := sfAPISecondStep(phone, sfAPILogin(t, phone, nil), sfCode(t, ts, app.secret, 0)); res.StatusCode != http.StatusOK {
			t.Fatalf("after the window: %d %s", res.StatusCode, res.body)
		}
	})
}

// TestPasswordResetWithSecondFactor: a reset link sets the password, but on an account with a
// second factor it does not sign in by itself: the second step does.
func TestPasswordResetWithSecondFactor(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts, mb := newMailServer(t, db, nil, func(c *handlers.Config) {
			c.LoginLimitAccount = ratelimit.Rate{N: 100, Per: 15 * time.Minute}
		})
		sfAlign(ts)
		ts.createUser(t, sfAnn)
		laptop := ts.browser(t, firefoxMac)
		laptop.pageSignIn(sfAnn)
		app := sfEnrol(t, laptop, "Pixel")
		mb.take(t, sfAnn)
		resetLink := func(t *testing.T) string {
			t.Helper()
			ts.newClient(t).forgot(sfAnn)
			for _, msg := range mb.take(t, sfAnn) {
				if msg.Subject == subjectReset {
					return mb.linkTo(t, msg, "/password/reset")
				}
			}
			t.Fatal("no reset link arrived")
			return ""
		}
		s := &steps{t: t}
		tablet := ts.browser(t, chromeAndroid)
		s.use(laptop, tablet)

		s.run("the page", func(t *testing.T) {
			token := tokenOf(t, resetLink(t))
			version := ts.tokenVersion(t, sfAnn)
			res := tablet.reset(token, "a new password for pages")
			secondStep := "/login/second-factor?next=" + url.QueryEscape("/devices?done=password-reset")
			expectRedirect(t, res, secondStep)
			if ts.tokenVersion(t, sfAnn) == version {
				t.Fatal("the password was not changed")
			}
			expectSignedOut(t, tablet)
			expectSignedOut(t, laptop)
			res = sfSecondStepAt(t, tablet, secondStep, sfCode(t, ts, app.secret, 0))
			expectRedirect(t, res, "/devices?done=password-reset")
			expectSignedIn(t, tablet)
			if amr := amrClaim(t, tablet.cookieValue("gh_access")); !slices.Equal(amr, []string{"pwd", "otp"}) {
				t.Fatalf("amr %q", amr)
			}
		})

		ts.clock.Advance(30 * time.Second)
		s.run("the app API", func(t *testing.T) {
			token := tokenOf(t, resetLink(t))
			app2 := ts.newClient(t)
			res := app2.postJSON("/auth/password/reset", map[string]string{"token": token, "new_password": "a new password for apps"}, nil)
			m := res.JSON(t)
			challenge, _ := m["challenge"].(string)
			if res.StatusCode != http.StatusUnauthorized || m["error"] != "second_factor_required" || challenge == "" || res.cookie("gh_refresh") != nil {
				t.Fatalf("reset through the API: %d %s", res.StatusCode, res.body)
			}
			expectSignedOut(t, tablet)
			// The link is used.
			expectAPIInvalidToken(t, app2.postJSON("/auth/password/reset", map[string]string{"token": token, "new_password": "yet another password"}, nil))
			res = sfAPISecondStep(app2, challenge, app.codes[0])
			if res.StatusCode != http.StatusOK || res.cookie("gh_refresh") == nil {
				t.Fatalf("the second step after the reset: %d %s", res.StatusCode, res.body)
			}
			if amr := amrClaim(t, res.JSON(t)["access_token"].(string)); !slices.Equal(amr, []string{"pwd", "rec"}) {
				t.Fatalf("amr %q", amr)
			}
			// The new password leads to the second step, too.
			res = app2.postJSON("/auth/login", map[string]string{"email": sfAnn, "password": "a new password for apps"}, nil)
			if res.StatusCode != http.StatusUnauthorized || res.JSON(t)["error"] != "second_factor_required" {
				t.Fatalf("the new password: %d %s", res.StatusCode, res.body)
			}
		})
	})
}

// TestRecoveryCodeNotice: signing in with a recovery code tells the owner by mail.
func TestRecoveryCodeNotice(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts, mb := newMailServer(t, db, nil)
		sfAlign(ts)
		ts.createUser(t, sfAnn)
		laptop := ts.browser(t, firefoxMac)
		laptop.pageSignIn(sfAnn)
		app := sfEnrol(t, laptop, "Pixel")
		mb.take(t, sfAnn)

		phone := ts.browser(t, chromeAndroid)
		sfLogin(t, phone, "")
		expectRedirect(t, sfSecondStep(t, phone, app.codes[3]), "/devices")
		var notice string
		for _, msg := range mb.take(t, sfAnn) {
			if msg.Subject == "A recovery code was used on your Gatehouse account" {
				if notice != "" {
					t.Fatal("two notices for one recovery code")
				}
				notice = msg.Text
				mb.linkTo(t, msg, "/account/security")
			}
		}
		if !strings.Contains(notice, "A recovery code was used to sign in") || !strings.Contains(notice, "You have 9 recovery codes left.") {
			t.Fatalf("the notice:\n%s", notice)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM security_events WHERE kind = 'recovery_code_used'"); n != 1 {
			t.Fatalf("%d recovery_code_used events", n)
		}
		// A TOTP code sends nothing of the kind.
		ts.clock.Advance(30 * time.Second)
		other := ts.browser(t, firefoxMac)
		sfLogin(t, other, "")
		expectRedirect(t, sfSecondStep(t, other, sfCode(t, ts, app.secret, 0)), "/devices")
		for _, msg := range mb.take(t, sfAnn) {
			if msg.Subject == "A recovery code was used on your Gatehouse account" {
				t.Fatal("a TOTP sign-in sent a recovery-code notice")
			}
		}
	})
}
