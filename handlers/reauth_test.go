package handlers_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"gatehouse/models/testdb"
	"gatehouse/services/auth"
)

// TestReauthentication: with a re-authentication window, sensitive actions after a long-lived
// sign-in ask for the password again (ASVS 7.5.2) on pages and in the API.
func TestReauthentication(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newTestServerWithAuth(t, db, func(c *auth.Config) { c.ReauthWindow = time.Hour })
		ts.createUser(t, "ann@example.com")
		laptop, phone := ts.newClient(t), ts.newClient(t)
		laptop.pageSignIn("ann@example.com")
		phone.pageSignIn("ann@example.com")
		apiClient := ts.newClient(t)
		access := apiClient.apiSignIn("ann@example.com")

		ts.clock.Advance(2 * time.Hour) // past the window; access cookies expire, pages refresh silently
		laptop.get("/devices")

		res := laptop.postForm("/devices/signout-others", nil)
		if res.StatusCode != http.StatusForbidden || res.Doc(t).Find(`input[name="password"]`).Length() != 1 {
			t.Fatalf("a stale sign-in must be asked for the password: %d", res.StatusCode)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM device_sessions WHERE revoked_at IS NULL"); n != 3 {
			t.Fatalf("nothing may change before the password is confirmed: %d live sessions", n)
		}
		res = laptop.postForm("/devices/signout-others", url.Values{"password": {"wrong password here"}})
		if res.StatusCode != http.StatusBadRequest || res.Doc(t).Find(".field-error").Length() == 0 {
			t.Fatalf("a wrong password: %d", res.StatusCode)
		}
		res = laptop.postForm("/devices/signout-others", url.Values{"password": {testPassword}})
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/devices?done=others" {
			t.Fatalf("with the password the action runs: %d %s", res.StatusCode, res.Header.Get("Location"))
		}
		if res := phone.get("/devices"); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("the phone is signed out: %d", res.StatusCode)
		}

		if res := apiClient.do(http.MethodPost, "/api/sessions/revoke-all", nil, bearer(access)); res.StatusCode != http.StatusUnauthorized {
			// revoke-others above signed the API device out as well
			t.Fatalf("api device: %d %s", res.StatusCode, res.body)
		}
		fresh := ts.newClient(t)
		fresh.apiSignIn("ann@example.com")
		ts.clock.Advance(2 * time.Hour)
		refreshed := fresh.do(http.MethodPost, "/auth/refresh", nil, nil)
		token := refreshed.JSON(t)["access_token"].(string)
		res = fresh.do(http.MethodPost, "/api/sessions/revoke-all", nil, bearer(token))
		if res.StatusCode != http.StatusForbidden || res.JSON(t)["error"] != "reauthentication_required" {
			t.Fatalf("API after a long-lived sign-in: %d %s", res.StatusCode, res.body)
		}
	})
}
