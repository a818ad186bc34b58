package e2e

import (
	"os"
	"strings"
	"testing"

	"github.com/playwright-community/playwright-go"
)

// scriptMarker is a page script of the test's own: it marks <body> once the
// page has loaded. The portal has no scripts, so this one tells whether a
// device runs JavaScript at all.
const scriptMarker = `addEventListener("DOMContentLoaded", () => { document.body.dataset.script = "ran" })`

// TestInfra checks the browser tooling the stories are written with, on the
// real portal: fields found by label and buttons by role, web-first
// assertions, artifact screenshots, a device with JavaScript off (no script
// runs, and Enter still submits a form natively), and a cookie jar per device.
func TestInfra(t *testing.T) {
	browser := newBrowser(t)
	srv := database{name: "sqlite"}.sharedServer(t)
	email := newAccount(t, srv, "ivo")

	t.Run("fill by label, click by role", func(t *testing.T) {
		d := newDevice(t, browser, withBaseURL(srv.URL))
		if _, err := d.Page.Goto("/login"); err != nil {
			t.Fatalf("goto: %v", err)
		}
		if err := d.Page.GetByLabel("Email").Fill(email); err != nil {
			t.Fatalf("fill: %v", err)
		}
		if err := d.Page.GetByLabel("Password").Fill("not " + password); err != nil {
			t.Fatalf("fill: %v", err)
		}
		if err := d.Page.GetByRole("button", playwright.PageGetByRoleOptions{Name: "Sign in"}).Click(); err != nil {
			t.Fatalf("click: %v", err)
		}
		const refused = "The email or password is not right."
		alert := d.Page.GetByRole("alert")
		if err := expect.Locator(alert).ToHaveText(refused); err != nil {
			t.Fatalf("alert: %v", err)
		}
		text, err := alert.TextContent()
		if err != nil || strings.TrimSpace(text) != refused {
			t.Fatalf("alert text = %q, %v", text, err)
		}
		path := saveArtifactScreenshot(t, d.Page, "refused")
		if st, err := os.Stat(path); err != nil || st.Size() == 0 {
			t.Fatalf("screenshot %s: %v", path, err)
		}
		t.Logf("screenshot: %s", path)
	})

	t.Run("javascript disabled, keyboard, own cookie jar", func(t *testing.T) {
		noJS := newDevice(t, browser, withName("nojs"), withJavaScriptDisabled(), withBaseURL(srv.URL))
		other := newDevice(t, browser, withName("other"), withBaseURL(srv.URL))
		for _, d := range []*device{noJS, other} {
			if err := d.Context.AddInitScript(playwright.Script{Content: playwright.String(scriptMarker)}); err != nil {
				t.Fatalf("%s: add script: %v", d.Name, err)
			}
			if _, err := d.Page.Goto("/login"); err != nil {
				t.Fatalf("%s goto: %v", d.Name, err)
			}
		}
		ran := func(d *device) playwright.Locator { return d.Page.Locator(`body[data-script="ran"]`) }
		if err := expect.Locator(ran(other)).ToHaveCount(1); err != nil {
			t.Fatalf("the script did not run on the device with JavaScript: %v", err)
		}
		if n, err := ran(noJS).Count(); err != nil || n != 0 {
			t.Fatalf("the script ran on the device without JavaScript (%d, %v)", n, err)
		}

		if err := noJS.Page.GetByLabel("Email").Fill(email); err != nil {
			t.Fatalf("fill: %v", err)
		}
		if err := noJS.Page.GetByLabel("Password").Fill(password); err != nil {
			t.Fatalf("fill: %v", err)
		}
		// Enter in the field submits the form natively (no JS involved).
		if err := noJS.Page.Keyboard().Press("Enter"); err != nil {
			t.Fatalf("press: %v", err)
		}
		if err := expect.Page(noJS.Page).ToHaveURL(devicesURL); err != nil {
			t.Fatalf("url: %v", err)
		}
		if err := expect.Locator(heading(noJS.Page, "Your devices")).ToBeVisible(); err != nil {
			t.Fatalf("heading: %v", err)
		}

		cookies, err := noJS.Context.Cookies(srv.URL)
		if err != nil {
			t.Fatalf("nojs cookies: %v", err)
		}
		values := map[string]string{}
		for _, c := range cookies {
			values[c.Name] = c.Value
		}
		if values["gh_refresh"] == "" || values["gh_access"] == "" {
			t.Fatalf("nojs cookies after signing in = %+v, want gh_refresh and gh_access", cookies)
		}
		theirs, err := other.Context.Cookies()
		if err != nil {
			t.Fatalf("other cookies: %v", err)
		}
		for _, c := range theirs {
			if c.Name == "gh_refresh" || c.Name == "gh_access" || (values[c.Name] != "" && c.Value == values[c.Name]) {
				t.Fatalf("the other device shares a cookie of the signed-in one: %s", c.Name)
			}
		}
	})
}
