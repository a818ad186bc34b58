// The story of a form posted to the portal from another site.

package e2e

import (
	"html/template"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/playwright-community/playwright-go"
)

// forgedForm is a page on another origin that posts a form to the portal as
// soon as it has loaded, without a CSRF token.
var forgedForm = template.Must(template.New("forged").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>You won a prize</title></head><body>
<h1>You won a prize</h1>
<form method="post" action="{{.Action}}">
{{range $name, $value := .Fields}}<input type="hidden" name="{{$name}}" value="{{$value}}">
{{end}}</form>
<script>window.addEventListener("load", function () { document.forms[0].submit(); });</script>
</body></html>`))

// startForgerySite serves forgedForm on another 127.0.0.1 port: GET
// /?action=URL&FIELD=VALUE… posts FIELD=VALUE… to URL.
func startForgerySite(t *testing.T) *httptest.Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("e2e: listen: %v", err)
	}
	site := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		fields := map[string]string{}
		for name := range q {
			if name != "action" {
				fields[name] = q.Get(name)
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = forgedForm.Execute(w, map[string]any{"Action": q.Get("action"), "Fields": fields})
	}))
	site.Listener.Close()
	site.Listener = ln
	site.Start()
	t.Cleanup(site.Close)
	return site
}

// openForgedForm opens the other site's page on the device, which posts to
// action, and returns the portal's answer to that post.
func openForgedForm(t *testing.T, d *device, site *httptest.Server, action string, fields url.Values) playwright.Response {
	t.Helper()
	q := url.Values{"action": {action}}
	for name, values := range fields {
		q[name] = values
	}
	resp, err := d.Page.ExpectResponse(func(u string) bool { return u == action }, func() error {
		_, err := d.Page.Goto(site.URL + "/?" + q.Encode())
		return err
	})
	step(t, "the forged form is posted to "+action, err)
	return resp
}

// formAction is the absolute URL the button's form posts to, e.g.
// http://127.0.0.1:PORT/devices/SID/rename.
func formAction(t testing.TB, submit playwright.Locator) string {
	t.Helper()
	action, err := submit.Evaluate("button => button.form.action", nil)
	step(t, "read the form's action", err)
	s, _ := action.(string)
	if s == "" {
		t.Fatal("the button's form has no action")
	}
	return s
}

// Wes is signed in on his laptop and his phone, and opens a page of another
// site on the laptop that posts forms to the portal behind his back. The
// portal refuses both with 403, and nothing changes.
func TestFormFromAnotherSiteIsRefused(t *testing.T) {
	eachDatabase(t, func(t *testing.T, db database) {
		srv := db.sharedServer(t)
		wes := newAccount(t, srv, "wes")
		laptop := openDevice(t, srv, chromeOnWindows)
		phone := openDevice(t, srv, safariOnIOS)
		signIn(t, laptop.Page, wes, password)
		signIn(t, phone.Page, wes, password)
		goTo(t, laptop.Page, "/devices")
		// The rename form sits in a closed <details>: open it to reach its button.
		click(t, deviceRow(laptop.Page, safariOnIOS).Locator("summary", playwright.LocatorLocatorOptions{HasText: "Rename " + safariOnIOS}), "Rename "+safariOnIOS)
		renamePhone := formAction(t, button(laptop.Page, "Save name for "+safariOnIOS))
		site := startForgerySite(t)

		forgeries := []struct {
			action string
			fields url.Values
		}{
			{srv.URL + "/devices/signout-others", nil},
			{renamePhone, url.Values{"name": {"Stolen"}}},
		}
		for _, f := range forgeries {
			resp := openForgedForm(t, laptop, site, f.action, f.fields)
			if resp.Status() != http.StatusForbidden {
				t.Errorf("POST %s from another origin: status %d, want 403", f.action, resp.Status())
			}
			expectHeading(t, laptop.Page, "Not allowed")
		}
		docScreenshot(t, db, laptop.Page, "error-403")

		goTo(t, laptop.Page, "/devices")
		expectDevices(t, laptop.Page, chromeOnWindows, safariOnIOS)
		goTo(t, phone.Page, "/devices")
		expectDevicesPage(t, phone.Page)
		expectDevices(t, phone.Page, chromeOnWindows, safariOnIOS)
	})
}
