package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"gatehouse/handlers"
	"gatehouse/models/testdb"
	"gatehouse/services/ratelimit"
)

// TestKnownDeviceIsNotLockedOut: guesses from elsewhere lock an account's password sign-in, but a
// browser that has signed in to the account before keeps its own count (OWASP's answer to lockout
// abuse); the lockout says how long in minutes and offers a reset link.
func TestKnownDeviceIsNotLockedOut(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newTestServer(t, db, trustLoopback, func(c *handlers.Config) {
			c.LoginLimitAccount = ratelimit.Rate{N: 3, Per: 15 * time.Minute}
		})
		ts.createUser(t, "ann@example.com")
		laptop := ts.newClient(t).at("192.0.2.10")
		laptop.pageSignIn("ann@example.com")
		expectRedirect(t, laptop.page("/devices", "/logout", nil), "/login")
		if laptop.cookieValue("gh_device") == "" {
			t.Fatal("the laptop kept no device cookie after signing out")
		}

		attacker := ts.newClient(t).at("198.51.100.7")
		for i := range 3 {
			res := attacker.page("/login", "/login", url.Values{"email": {"ann@example.com"}, "password": {"guess " + string(rune('a'+i))}})
			if res.StatusCode != http.StatusUnauthorized {
				t.Fatalf("guess %d: %d, want 401", i, res.StatusCode)
			}
		}
		res := attacker.page("/login", "/login", url.Values{"email": {"ann@example.com"}, "password": {testPassword}})
		doc := expectPage(t, res, http.StatusTooManyRequests, "Sign in")
		alert := strings.Join(strings.Fields(text(doc.Find(`[role="alert"]`))), " ")
		if !strings.Contains(alert, "Try again in 15 minutes.") || doc.Find(`[role="alert"] a[href="/password/forgot"]`).Length() != 1 {
			t.Errorf("lockout alert %q: want the wait in minutes and a reset link", alert)
		}
		if got := res.Header.Get("Retry-After"); got == "" {
			t.Error("no Retry-After")
		}

		// A new browser on the owner's own network is locked like any other: it is not known.
		stranger := ts.newClient(t).at("192.0.2.10")
		if res := stranger.page("/login", "/login", url.Values{"email": {"ann@example.com"}, "password": {testPassword}}); res.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("a browser the account never used: %d, want 429", res.StatusCode)
		}

		// The laptop signed in before: its device cookie names a device the account knows.
		res = laptop.page("/login", "/login", url.Values{"email": {"ann@example.com"}, "password": {testPassword}})
		expectRedirect(t, res, "/devices")
		expectSignedIn(t, laptop)

		// A forged device cookie names nothing the account knows.
		forger := ts.newClient(t).at("203.0.113.5")
		forger.setCookie("gh_device", "made-up-device-id-0001")
		if res := forger.page("/login", "/login", url.Values{"email": {"ann@example.com"}, "password": {testPassword}}); res.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("a forged device cookie: %d, want 429", res.StatusCode)
		}
	})
}
