package handlers_test

import (
	"net/http"
	"net/url"
	"testing"

	"gatehouse/models/testdb"
)

// TestGivenNameSurvivesSignIn: a name the person gave a device stays when that device signs in
// again, after signing out, in a browser or in an app that names itself; other devices keep their
// default names.
func TestGivenNameSurvivesSignIn(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		h := newHousehold(t, db)
		ts := h.ts
		h.use(t)
		expectRedirect(t, h.laptop.page("/devices", "/devices/"+h.laptopSID+"/rename", url.Values{"name": {"Ann's work laptop"}}), "/devices?done=renamed")
		expectRedirect(t, h.laptop.page("/devices", "/logout", nil), "/login")
		h.laptop.pageSignIn("ann@example.com")
		sid := ts.sessionOf(t, h.laptop)
		if sid == h.laptopSID {
			t.Fatal("signing in again kept the old session")
		}
		if got := ts.deviceName(t, sid); got != "Ann's work laptop" {
			t.Errorf("the laptop after signing in again is %q, want the name Ann gave it", got)
		}
		if got := ts.deviceName(t, ts.sessionOf(t, h.phone)); got == "Ann's work laptop" {
			t.Error("the phone took the laptop's name")
		}

		// An app: its own device id, and a name it sends; once Ann renames it, her name wins.
		app := ts.newClient(t)
		header := map[string]string{"X-Device-Id": "ann-tablet-app-0001", "X-Device-Name": "Tablet app"}
		res := app.postJSON("/auth/login", map[string]string{"email": "ann@example.com", "password": testPassword}, header)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("app sign-in: %d %s", res.StatusCode, res.body)
		}
		appSID := ts.queryString(t, "SELECT id FROM device_sessions WHERE device_id = ? AND revoked_at IS NULL", "ann-tablet-app-0001")
		if got := ts.deviceName(t, appSID); got != "Tablet app" {
			t.Fatalf("the app's session is %q, want the name it sent", got)
		}
		expectRedirect(t, h.laptop.page("/devices", "/devices/"+appSID+"/rename", url.Values{"name": {"Kitchen tablet"}}), "/devices?done=renamed")
		res = app.postJSON("/auth/login", map[string]string{"email": "ann@example.com", "password": testPassword}, header)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("app sign-in again: %d %s", res.StatusCode, res.body)
		}
		again := ts.queryString(t, "SELECT id FROM device_sessions WHERE device_id = ? AND revoked_at IS NULL", "ann-tablet-app-0001")
		if again == appSID || ts.deviceName(t, again) != "Kitchen tablet" {
			t.Errorf("the app after signing in again: session %s named %q, want a new session named Kitchen tablet", again, ts.deviceName(t, again))
		}
	})
}
