package handlers_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"gatehouse/services/auth/passkeytest"
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

// Passkeys through the real app: the options routes answer JSON to the page's script, and the
// answers come back as ordinary forms, answered with redirects and pages. The test plays the
// browser and its authenticator (passkeytest.Authenticator). WebAuthn refuses IP addresses, so the
// portal's base URL is on localhost while the test's client talks to 127.0.0.1.

// newPasskeyServer is a test server whose base URL names localhost, and the person's authenticator.
func newPasskeyServer(t *testing.T, db *testdb.DB, opts ...serverOption) (*testServer, *passkeytest.Authenticator) {
	t.Helper()
	ts := newTestServerWithAuth(t, db, func(c *auth.Config) { c.Issuer = strings.Replace(c.Issuer, "127.0.0.1", "localhost", 1) }, opts...)
	return ts, &passkeytest.Authenticator{Origin: strings.Replace(ts.URL, "127.0.0.1", "localhost", 1), RPID: "localhost"}
}

// ceremony asks an options route for a ceremony, as passkeys.js does: a form POST with the CSRF
// token of the last page loaded. It returns the ceremony id and the publicKey options.
func (c *client) ceremony(path string, form url.Values) (string, []byte) {
	c.t.Helper()
	res := c.postForm(path, form)
	if res.StatusCode != http.StatusOK {
		c.t.Fatalf("%s: %d %s", path, res.StatusCode, res.body)
	}
	var body struct {
		Ceremony  string          `json:"ceremony"`
		PublicKey json.RawMessage `json:"publicKey"`
	}
	if err := json.Unmarshal(res.body, &body); err != nil || len(body.PublicKey) == 0 {
		c.t.Fatalf("%s answered %s", path, res.body)
	}
	return body.Ceremony, body.PublicKey
}

// addPasskey adds a passkey named name on the security page and returns it with the answer page.
func (c *client) addPasskey(t *testing.T, key *passkeytest.Authenticator, name string) (*passkeytest.Credential, *response) {
	t.Helper()
	expectPage(t, c.get("/account/security"), http.StatusOK, "Sign-in security")
	id, options := c.ceremony("/account/security/passkeys/options", url.Values{"name": {name}})
	answer, cred := key.Create(t, options)
	return cred, c.postForm("/account/security/passkeys", url.Values{"ceremony": {id}, "credential": {string(answer)}, "name": {name}})
}

// accessAMR is how the session of the client's access cookie signed in.
func (c *client) accessAMR() []string {
	c.t.Helper()
	parts := strings.Split(c.cookieValue("gh_access"), ".")
	if len(parts) != 3 {
		c.t.Fatalf("no access cookie")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		c.t.Fatal(err)
	}
	var claims struct {
		AMR []string `json:"amr"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		c.t.Fatal(err)
	}
	return claims.AMR
}

// passkeyState sums up what a refused passkey answer must leave as it was: sessions and their
// tokens, every factor with its credential (signature counter) and last use, recovery codes, and
// used challenges. Failed attempts and their security events are counted on purpose, so not here.
func (ts *testServer) passkeyState(t *testing.T) string {
	t.Helper()
	var parts []string
	for _, q := range []string{
		"SELECT COUNT(*) FROM device_sessions",
		"SELECT COUNT(*) FROM device_sessions WHERE revoked_at IS NULL",
		"SELECT COUNT(*) FROM refresh_tokens",
		"SELECT COUNT(*) FROM factors",
		"SELECT COUNT(*) FROM factors WHERE last_used_at IS NOT NULL",
		"SELECT COUNT(*) FROM recovery_codes",
		"SELECT COUNT(*) FROM auth_challenges WHERE used_at IS NOT NULL",
	} {
		parts = append(parts, fmt.Sprint(ts.db.Count(t, q)))
	}
	var creds []string
	if err := ts.db.Store.DB().Raw("SELECT credential FROM factors ORDER BY id").Scan(&creds).Error; err != nil {
		t.Fatal(err)
	}
	return strings.Join(parts, ",") + "\n" + strings.Join(creds, "\n")
}

// storedCounter is the signature counter the server holds for a passkey.
func (ts *testServer) storedCounter(t *testing.T, cred *passkeytest.Credential) uint32 {
	t.Helper()
	var stored struct {
		Authenticator struct {
			SignCount uint32 `json:"signCount"`
		} `json:"authenticator"`
	}
	if err := json.Unmarshal([]byte(ts.queryString(t, "SELECT credential FROM factors WHERE credential_id = ?", cred.ID)), &stored); err != nil {
		t.Fatal(err)
	}
	return stored.Authenticator.SignCount
}

// expectNoServerError fails on any 5xx.
func expectNoServerError(t *testing.T, res *response) {
	t.Helper()
	if res.StatusCode >= 500 {
		t.Fatalf("server error %d: %.300s", res.StatusCode, res.body)
	}
}

func TestPasskeyPagesRegisterThenSignInAlone(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts, key := newPasskeyServer(t, db)
		ts.createUser(t, "ann@example.com")
		laptop := ts.newClient(t)
		laptop.pageSignIn("ann@example.com")

		doc := expectPage(t, laptop.get("/account/security"), http.StatusOK, "Sign-in security")
		form := doc.Find(`form[data-passkey="register"]`)
		if form.Length() != 1 || form.AttrOr("action", "") != "/account/security/passkeys" || form.AttrOr("data-options", "") != "/account/security/passkeys/options" {
			t.Fatalf("registration form: %d", form.Length())
		}
		if _, hidden := form.Attr("hidden"); !hidden {
			t.Fatal("the passkey form shows before the script finds WebAuthn")
		}
		if doc.Find(`script[src="/static/passkeys.js"]`).Length() == 0 || form.Find(`[data-passkey-alert]`).Length() != 1 {
			t.Fatal("the page lacks the script or the alert the script writes into")
		}

		cred, res := laptop.addPasskey(t, key, "Laptop")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("the first passkey: %d, want the recovery codes page", res.StatusCode)
		}
		if n := res.Doc(t).Find("ul.codes li").Length(); n != auth.RecoveryCodeCount {
			t.Fatalf("%d recovery codes shown, want %d", n, auth.RecoveryCodeCount)
		}
		ts.clock.Advance(time.Second)
		_, res = laptop.addPasskey(t, key, "Phone")
		expectRedirect(t, res, "/account/security?done=passkey-added")
		doc = expectPage(t, laptop.get("/account/security?done=passkey-added"), http.StatusOK, "Sign-in security")
		var names []string
		doc.Find("li.factor h3").Each(func(_ int, s *goquery.Selection) { names = append(names, text(s)) })
		if !slices.Equal(names, []string{"Laptop", "Phone"}) {
			t.Fatalf("factors %v, want both passkeys", names)
		}

		// A fresh browser signs in with the passkey alone.
		phone := ts.newClient(t)
		doc = expectPage(t, phone.get("/login?next=/account"), http.StatusOK, "Sign in")
		if doc.Find(`form[data-passkey="login"][action="/login/passkey"] input[name="next"]`).AttrOr("value", "") != "/account" {
			t.Fatal("the passkey sign-in form does not carry next")
		}
		id, options := phone.ceremony("/login/passkey/options", nil)
		res = phone.postForm("/login/passkey", url.Values{"ceremony": {id}, "credential": {string(key.Get(t, options, cred))}, "next": {"/account"}})
		expectRedirect(t, res, "/account")
		if amr := phone.accessAMR(); !slices.Equal(amr, []string{"hwk"}) {
			t.Fatalf("amr %v, want [hwk]", amr)
		}
		expectSignedIn(t, phone)
		if n := db.Count(t, "SELECT COUNT(*) FROM security_events WHERE kind = 'signed_in' AND detail = 'hwk'"); n != 1 {
			t.Fatalf("%d passkey sign-in events, want 1", n)
		}
	})
}

func TestPasskeyPagesSecondStep(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts, key := newPasskeyServer(t, db)
		ts.createUser(t, "ann@example.com")
		laptop := ts.newClient(t)
		laptop.pageSignIn("ann@example.com")
		cred, _ := laptop.addPasskey(t, key, "Laptop")

		// toSecondStep signs in with the password on a new browser and loads the second step.
		toSecondStep := func(t *testing.T) *client {
			t.Helper()
			c := ts.newClient(t)
			c.get("/login")
			res := c.postForm("/login", url.Values{"email": {"ann@example.com"}, "password": {testPassword}, "next": {"/account"}})
			expectRedirect(t, res, "/login/second-factor?next=%2Faccount")
			doc := expectPage(t, c.get("/login/second-factor?next=/account"), http.StatusOK, "Confirm it's you")
			if doc.Find(`form[data-passkey="second-step"][action="/login/second-factor"]`).Length() != 1 {
				t.Fatal("the second step offers no passkey")
			}
			return c
		}

		phone := toSecondStep(t)
		id, options := phone.ceremony("/login/second-factor/passkey/options", nil)
		if id != "" {
			t.Fatalf("the second step's ceremony has an id %q; the sign-in's cookie names it", id)
		}
		res := phone.postForm("/login/second-factor", url.Values{"credential": {string(key.Get(t, options, cred))}, "next": {"/account"}})
		expectRedirect(t, res, "/account")
		if amr := phone.accessAMR(); !slices.Equal(amr, []string{"pwd", "hwk"}) {
			t.Fatalf("amr %v, want [pwd hwk]", amr)
		}
		expectSignedIn(t, phone)

		refusals := []struct {
			name   string
			answer func(t *testing.T, options []byte) []byte
		}{
			{"wrong origin", func(t *testing.T, o []byte) []byte {
				return (&passkeytest.Authenticator{Origin: "http://localhost:1", RPID: "localhost"}).Get(t, o, cred)
			}},
			{"wrong RP ID hash", func(t *testing.T, o []byte) []byte {
				return (&passkeytest.Authenticator{Origin: key.Origin, RPID: "evil.example"}).Get(t, o, cred)
			}},
			{"wrong challenge", func(t *testing.T, o []byte) []byte { return key.Get(t, passkeytest.WithChallenge(t, o), cred) }},
			{"malformed", func(t *testing.T, o []byte) []byte { return []byte(`{"id":`) }},
		}
		for _, tc := range refusals {
			t.Run(tc.name, func(t *testing.T) {
				c := toSecondStep(t)
				_, options := c.ceremony("/login/second-factor/passkey/options", nil)
				before := ts.passkeyState(t)
				res := c.postForm("/login/second-factor", url.Values{"credential": {string(tc.answer(t, options))}})
				doc := expectPage(t, res, http.StatusUnauthorized, "Confirm it's you")
				if !strings.Contains(doc.Text(), "That passkey did not confirm it's you") {
					t.Fatal("the page does not say the passkey was refused")
				}
				if after := ts.passkeyState(t); after != before {
					t.Fatalf("a refused passkey changed the state:\n%s\nwant\n%s", after, before)
				}
			})
		}

		t.Run("no second step in this browser", func(t *testing.T) {
			c := ts.newClient(t)
			c.get("/login")
			res := c.postForm("/login/second-factor/passkey/options", nil)
			if res.StatusCode != http.StatusUnauthorized || res.JSON(t)["location"] != "/login?done=second-step-expired" {
				t.Fatalf("options without a sign-in: %d %s", res.StatusCode, res.body)
			}
		})
	})
}

func TestPasskeyPagesReauthentication(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts, key := newPasskeyServer(t, db)
		ts.createUser(t, "ann@example.com")
		ts.createUser(t, "bob@example.com")
		laptop := ts.newClient(t)
		laptop.pageSignIn("ann@example.com")
		cred, _ := laptop.addPasskey(t, key, "Laptop")

		ts.clock.Advance(auth.SecurityReauthWindow + time.Minute)
		doc := expectPage(t, laptop.get("/account/security"), http.StatusOK, "Confirm it's you")
		if doc.Find(`form[data-passkey="reauth"][action="/account/security"]`).Length() != 1 {
			t.Fatal("the confirm page offers no passkey")
		}

		refusals := []struct {
			name   string
			answer func(t *testing.T, options []byte) []byte
		}{
			{"wrong origin", func(t *testing.T, o []byte) []byte {
				return (&passkeytest.Authenticator{Origin: "https://" + strings.TrimPrefix(key.Origin, "http://"), RPID: "localhost"}).Get(t, o, cred)
			}},
			{"wrong RP ID hash", func(t *testing.T, o []byte) []byte {
				return (&passkeytest.Authenticator{Origin: key.Origin, RPID: "127.0.0.1"}).Get(t, o, cred)
			}},
			{"wrong challenge", func(t *testing.T, o []byte) []byte { return key.Get(t, passkeytest.WithChallenge(t, o), cred) }},
			{"a replayed signature counter", func(t *testing.T, o []byte) []byte {
				cred.Counter = ts.storedCounter(t, cred) - 1 // signs the counter the server holds
				return key.Get(t, o, cred)
			}},
			{"malformed", func(t *testing.T, o []byte) []byte { return []byte("null") }},
		}
		// One confirmation first, so that the counter is past zero.
		id, options := laptop.ceremony("/reauth/passkey/options", nil)
		expectRedirect(t, laptop.postForm("/account/security", url.Values{"ceremony": {id}, "credential": {string(key.Get(t, options, cred))}}), "/account/security")
		expectPage(t, laptop.get("/account/security"), http.StatusOK, "Sign-in security")
		ts.clock.Advance(auth.SecurityReauthWindow + time.Minute)
		expectPage(t, laptop.get("/account/security"), http.StatusOK, "Confirm it's you")

		for _, tc := range refusals {
			t.Run(tc.name, func(t *testing.T) {
				laptop.t = t
				id, options := laptop.ceremony("/reauth/passkey/options", nil)
				before := ts.passkeyState(t)
				res := laptop.postForm("/account/security", url.Values{"ceremony": {id}, "credential": {string(tc.answer(t, options))}})
				doc := expectPage(t, res, http.StatusBadRequest, "Confirm it's you")
				if !strings.Contains(doc.Text(), "That passkey did not confirm it's you") {
					t.Fatal("the page does not say the passkey was refused")
				}
				if after := ts.passkeyState(t); after != before {
					t.Fatalf("a refused passkey changed the state:\n%s\nwant\n%s", after, before)
				}
				expectPage(t, laptop.get("/account/security"), http.StatusOK, "Confirm it's you")
			})
		}
		laptop.t = t

		// The right passkey confirms, once.
		id, options = laptop.ceremony("/reauth/passkey/options", nil)
		answer := string(key.Get(t, options, cred))
		expectRedirect(t, laptop.postForm("/account/security", url.Values{"ceremony": {id}, "credential": {answer}}), "/account/security")
		expectPage(t, laptop.get("/account/security"), http.StatusOK, "Sign-in security")
		res := laptop.postForm("/account/security", url.Values{"ceremony": {id}, "credential": {answer}})
		expectNoServerError(t, res)

		// An account without a passkey gets no passkey ceremony.
		bob := ts.newClient(t)
		bob.pageSignIn("bob@example.com")
		bob.get("/devices")
		if res := bob.postForm("/reauth/passkey/options", nil); res.StatusCode != http.StatusNotFound || res.JSON(t)["error"] != "not_found" {
			t.Fatalf("reauth options without a passkey: %d %s", res.StatusCode, res.body)
		}
	})
}

func TestPasskeyPagesSignInRefusals(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts, key := newPasskeyServer(t, db)
		ts.createUser(t, "ann@example.com")
		ts.createUser(t, "bob@example.com")
		laptop := ts.newClient(t)
		laptop.pageSignIn("ann@example.com")
		annKey, _ := laptop.addPasskey(t, key, "Laptop")
		desk := ts.newClient(t)
		desk.pageSignIn("bob@example.com")
		bobKey, _ := desk.addPasskey(t, key, "Desk")

		// signIn begins a ceremony on a fresh browser and posts the answer answer makes.
		signIn := func(t *testing.T, answer func(options []byte) (ceremony string, credential []byte, id string)) *response {
			t.Helper()
			c := ts.newClient(t)
			c.get("/login")
			ceremony, options := c.ceremony("/login/passkey/options", nil)
			override, credential, _ := answer(options)
			if override != "" {
				ceremony = override
			}
			return c.postForm("/login/passkey", url.Values{"ceremony": {ceremony}, "credential": {string(credential)}})
		}
		ok := func(t *testing.T) {
			t.Helper()
			expectRedirect(t, signIn(t, func(o []byte) (string, []byte, string) { return "", key.Get(t, o, annKey), "" }), "/devices")
		}
		ok(t) // the counter is past zero

		used := ts.newClient(t)
		used.get("/login")
		usedID, usedOptions := used.ceremony("/login/passkey/options", nil)
		expectRedirect(t, used.postForm("/login/passkey", url.Values{"ceremony": {usedID}, "credential": {string(key.Get(t, usedOptions, annKey))}}), "/devices")

		cases := []struct {
			name   string
			answer func(t *testing.T, options []byte) (ceremony string, credential []byte)
		}{
			{"wrong origin", func(t *testing.T, o []byte) (string, []byte) {
				return "", (&passkeytest.Authenticator{Origin: "http://evil.example", RPID: "localhost"}).Get(t, o, annKey)
			}},
			{"wrong RP ID hash", func(t *testing.T, o []byte) (string, []byte) {
				return "", (&passkeytest.Authenticator{Origin: key.Origin, RPID: "evil.example"}).Get(t, o, annKey)
			}},
			{"wrong challenge", func(t *testing.T, o []byte) (string, []byte) {
				return "", key.Get(t, passkeytest.WithChallenge(t, o), annKey)
			}},
			{"a used ceremony", func(t *testing.T, o []byte) (string, []byte) { return usedID, key.Get(t, usedOptions, annKey) }},
			{"a forged ceremony", func(t *testing.T, o []byte) (string, []byte) { return "ghc_forged", key.Get(t, o, annKey) }},
			{"a replayed signature counter", func(t *testing.T, o []byte) (string, []byte) {
				annKey.Counter = ts.storedCounter(t, annKey) - 1 // signs the counter the server holds
				return "", key.Get(t, o, annKey)
			}},
			{"another user's credential under Ann's user handle", func(t *testing.T, o []byte) (string, []byte) {
				forged := *bobKey
				forged.UserHandle = annKey.UserHandle
				return "", key.Get(t, o, &forged)
			}},
			{"Bob's user handle on Ann's credential", func(t *testing.T, o []byte) (string, []byte) {
				forged := *annKey
				forged.UserHandle = bobKey.UserHandle
				return "", key.Get(t, o, &forged)
			}},
			{"malformed", func(t *testing.T, o []byte) (string, []byte) { return "", []byte(`{"type":"public-key","id":"!!"}`) }},
			{"empty", func(t *testing.T, o []byte) (string, []byte) { return "", nil }},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := ts.passkeyState(t)
				res := signIn(t, func(o []byte) (string, []byte, string) {
					ceremony, credential := tc.answer(t, o)
					return ceremony, credential, ""
				})
				doc := expectPage(t, res, http.StatusUnauthorized, "Sign in")
				if got := text(doc.Find(`[role="alert"].alert`)); got != "That passkey did not sign you in. Try again, or sign in with your password." {
					t.Fatalf("alert %q", got)
				}
				if res.cookie("gh_refresh") != nil || res.cookie("gh_access") != nil {
					t.Fatal("a refused passkey set session cookies")
				}
				if after := ts.passkeyState(t); after != before {
					t.Fatalf("a refused passkey changed the state:\n%s\nwant\n%s", after, before)
				}
			})
		}

		t.Run("expired", func(t *testing.T) {
			c := ts.newClient(t)
			c.get("/login")
			id, options := c.ceremony("/login/passkey/options", nil)
			annKey.Counter = 100
			answer := key.Get(t, options, annKey)
			ts.clock.Advance(auth.ChallengeTTL + time.Second)
			before := ts.passkeyState(t)
			expectPage(t, c.postForm("/login/passkey", url.Values{"ceremony": {id}, "credential": {string(answer)}}), http.StatusUnauthorized, "Sign in")
			if after := ts.passkeyState(t); after != before {
				t.Fatalf("state changed:\n%s\nwant\n%s", after, before)
			}
		})

		t.Run("and the right passkey still signs in", ok)
	})
}

func TestPasskeyPagesRegistrationRefusals(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts, key := newPasskeyServer(t, db)
		ts.createUser(t, "ann@example.com")
		laptop := ts.newClient(t)
		laptop.pageSignIn("ann@example.com")
		annKey, _ := laptop.addPasskey(t, key, "Laptop")

		cases := []struct {
			name     string
			answer   func(t *testing.T, options []byte) []byte
			field    string // the error's key on the page: "passkey" or "passkey_name"
			message  string
			nameSent string
		}{
			{"the same credential twice", func(t *testing.T, o []byte) []byte {
				return key.Attest(t, o, &passkeytest.Credential{ID: annKey.ID, Key: annKey.Key})
			}, "passkey", "That passkey is registered already.", "Again"},
			{"wrong origin", func(t *testing.T, o []byte) []byte {
				a, _ := (&passkeytest.Authenticator{Origin: "http://evil.example", RPID: "localhost"}).Create(t, o)
				return a
			}, "passkey", "Your browser's answer did not verify, so no passkey was added. Try again.", "Key"},
			{"wrong RP ID hash", func(t *testing.T, o []byte) []byte {
				a, _ := (&passkeytest.Authenticator{Origin: key.Origin, RPID: "evil.example"}).Create(t, o)
				return a
			}, "passkey", "Your browser's answer did not verify, so no passkey was added. Try again.", "Key"},
			{"wrong challenge", func(t *testing.T, o []byte) []byte {
				a, _ := key.Create(t, passkeytest.WithChallenge(t, o))
				return a
			}, "passkey", "Your browser's answer did not verify, so no passkey was added. Try again.", "Key"},
			{"malformed", func(t *testing.T, o []byte) []byte { return []byte("\x00\xff not json") },
				"passkey", "Your browser's answer did not verify, so no passkey was added. Try again.", "Key"},
			{"a name too long", func(t *testing.T, o []byte) []byte {
				a, _ := key.Create(t, o)
				return a
			}, "passkey_name", "", strings.Repeat("n", 65)},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				laptop.t = t
				expectPage(t, laptop.get("/account/security"), http.StatusOK, "Sign-in security")
				id, options := laptop.ceremony("/account/security/passkeys/options", url.Values{"name": {"Key"}})
				before := ts.passkeyState(t)
				res := laptop.postForm("/account/security/passkeys", url.Values{"ceremony": {id}, "credential": {string(tc.answer(t, options))}, "name": {tc.nameSent}})
				doc := expectPage(t, res, http.StatusBadRequest, "Sign-in security")
				form := doc.Find(`form[data-passkey="register"]`)
				if tc.field == "passkey_name" {
					msg := fieldError(t, form, `input[name="name"]`)
					if msg == "" {
						t.Fatal("no error next to the name")
					}
					link := form.Find(`.error-summary-list a[href="#field-passkey-name"]`)
					if link.Length() != 1 || !strings.HasSuffix(text(link), msg) {
						t.Fatalf("the form's error summary does not link to the name with its error: %q", text(form.Find(".error-summary")))
					}
				} else if got := text(form.Find(`[role="alert"]`)); got != tc.message {
					t.Fatalf("alert %q, want %q", got, tc.message)
				}
				if after := ts.passkeyState(t); after != before {
					t.Fatalf("a refused registration changed the state:\n%s\nwant\n%s", after, before)
				}
			})
		}
		laptop.t = t

		// The options route says what is wrong in JSON the script shows.
		expectPage(t, laptop.get("/account/security"), http.StatusOK, "Sign-in security")
		res := laptop.postForm("/account/security/passkeys/options", url.Values{"name": {strings.Repeat("n", 65)}})
		if body := res.JSON(t); res.StatusCode != http.StatusBadRequest || body["field"] != "name" || body["message"] == "" {
			t.Fatalf("a long name: %d %s", res.StatusCode, res.body)
		}
		if res := laptop.postRaw("/account/security/passkeys/options", url.Values{"name": {"Key"}}, nil); res.StatusCode != http.StatusForbidden {
			t.Fatalf("options without the CSRF token: %d", res.StatusCode)
		}
		ts.clock.Advance(auth.SecurityReauthWindow + time.Minute)
		laptop.get("/devices")
		res = laptop.postForm("/account/security/passkeys/options", url.Values{"name": {"Key"}})
		if body := res.JSON(t); res.StatusCode != http.StatusForbidden || body["location"] != "/account/security" {
			t.Fatalf("options past the re-authentication window: %d %s", res.StatusCode, res.body)
		}
		before := ts.passkeyState(t)
		expectRedirect(t, laptop.postForm("/account/security/passkeys", url.Values{"ceremony": {"ghc_x"}, "credential": {"{}"}}), "/account/security")
		if after := ts.passkeyState(t); after != before {
			t.Fatalf("state changed:\n%s\nwant\n%s", after, before)
		}
	})
}

func TestPasskeyRoutesWithoutPasskeys(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newTestServer(t, db) // its base URL is an IP address: no passkeys
		c := ts.newClient(t)
		c.get("/login")
		res := c.postForm("/login/passkey/options", nil)
		if res.StatusCode != http.StatusNotFound || res.JSON(t)["error"] != "not_found" {
			t.Fatalf("options with passkeys off: %d %s", res.StatusCode, res.body)
		}
		c.get("/login")
		expectPage(t, c.postForm("/login/passkey", url.Values{"ceremony": {"ghc_x"}, "credential": {"{}"}}), http.StatusUnauthorized, "Sign in")

		js := c.get("/static/passkeys.js")
		if js.StatusCode != http.StatusOK || !strings.Contains(js.Header.Get("Content-Type"), "javascript") ||
			!strings.Contains(string(js.body), "isConditionalMediationAvailable") {
			t.Fatalf("/static/passkeys.js: %d %q", js.StatusCode, js.Header.Get("Content-Type"))
		}
	})
}

func TestPasskeySignInIsLimitedPerIP(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		limit := func(cfg *handlers.Config) { cfg.LoginLimitIP = ratelimit.Rate{N: 3, Per: 15 * time.Minute} }
		ts, _ := newPasskeyServer(t, db, limit)
		c := ts.newClient(t)
		c.get("/login")
		for i := range 3 {
			res := c.postForm("/login/passkey", url.Values{"ceremony": {"ghc_x"}, "credential": {"garbage"}})
			if res.StatusCode != http.StatusUnauthorized {
				t.Fatalf("attempt %d: %d", i+1, res.StatusCode)
			}
		}
		res := c.postForm("/login/passkey", url.Values{"ceremony": {"ghc_x"}, "credential": {"garbage"}})
		if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
			t.Fatalf("past the limit: %d", res.StatusCode)
		}
	})
}
