// What a person does on the portal, in the words of docs/UI.md: the helpers
// the stories are written with. Elements are found by role and label.

package e2e

import (
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"
)

// The devices of the stories, by the default name the portal gives each from
// its user agent.
const (
	chromeOnWindows = "Chrome on Windows"
	safariOnIOS     = "Safari on iOS"
	firefoxOnMacOS  = "Firefox on macOS"
)

var userAgents = map[string]string{
	chromeOnWindows: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/136.0.0.0 Safari/537.36",
	safariOnIOS:     "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
	firefoxOnMacOS:  "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:127.0) Gecko/20100101 Firefox/127.0",
}

// openDevice picks up a new device (its own browser context: cookie jar and
// all) that the portal will name defaultName; its relative URLs go to srv.
func openDevice(t *testing.T, srv *server, defaultName string, opts ...deviceOption) *device {
	t.Helper()
	ua, ok := userAgents[defaultName]
	if !ok {
		t.Fatalf("e2e: no user agent for a device named %q", defaultName)
	}
	opts = append([]deviceOption{withName(fileSafe(defaultName)), withUserAgent(ua), withBaseURL(srv.URL)}, opts...)
	return newDevice(t, newBrowser(t), opts...)
}

// step fails the test at once when a browser action or expectation failed.
func step(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// goTo navigates to a path of the portal (or any URL).
func goTo(t testing.TB, page playwright.Page, path string) {
	t.Helper()
	_, err := page.Goto(path)
	step(t, "go to "+path, err)
}

func field(page playwright.Page, label string) playwright.Locator {
	return page.GetByLabel(label, playwright.PageGetByLabelOptions{Exact: playwright.Bool(true)})
}

func button(page playwright.Page, name string) playwright.Locator {
	return page.GetByRole("button", playwright.PageGetByRoleOptions{Name: name, Exact: playwright.Bool(true)})
}

func link(page playwright.Page, name string) playwright.Locator {
	return page.GetByRole("link", playwright.PageGetByRoleOptions{Name: name, Exact: playwright.Bool(true)})
}

func heading(page playwright.Page, name string) playwright.Locator {
	return page.GetByRole("heading", playwright.PageGetByRoleOptions{Name: name, Exact: playwright.Bool(true)})
}

func fill(t testing.TB, page playwright.Page, label, value string) {
	t.Helper()
	step(t, "fill "+label, field(page, label).Fill(value))
}

func click(t testing.TB, target playwright.Locator, what string) {
	t.Helper()
	step(t, "click "+what, target.Click())
}

// expectHeading waits for the page's heading, e.g. "Your devices".
func expectHeading(t testing.TB, page playwright.Page, name string) {
	t.Helper()
	step(t, "heading "+name, expect.Locator(heading(page, name)).ToBeVisible())
}

// expectNotice waits for the one-line notice after an action ("Device renamed.").
func expectNotice(t testing.TB, page playwright.Page, text string) {
	t.Helper()
	step(t, "notice "+text, expect.Locator(page.GetByRole("status")).ToHaveText(text))
}

// ---------------------------------------------------------------------------
// Signing in and out.

var (
	signInURL  = regexp.MustCompile(`/login(\?.*)?$`)
	devicesURL = regexp.MustCompile(`/devices(\?.*)?$`)
)

// submitSignIn fills and sends the sign-in form, whatever the outcome.
func submitSignIn(t testing.TB, page playwright.Page, email, password string) {
	t.Helper()
	goTo(t, page, "/login")
	fill(t, page, "Email", email)
	fill(t, page, "Password", password)
	click(t, button(page, "Sign in"), "Sign in")
}

// signIn signs in and lands on "Your devices".
func signIn(t testing.TB, page playwright.Page, email, password string) {
	t.Helper()
	submitSignIn(t, page, email, password)
	expectDevicesPage(t, page)
}

// expectSignInPage checks that the device was sent to the sign-in page.
func expectSignInPage(t testing.TB, page playwright.Page) {
	t.Helper()
	step(t, "on the sign-in page", expect.Page(page).ToHaveURL(signInURL))
	expectHeading(t, page, "Sign in")
}

// expectDevicesPage checks that the device is signed in, on "Your devices".
func expectDevicesPage(t testing.TB, page playwright.Page) {
	t.Helper()
	step(t, "on the devices page", expect.Page(page).ToHaveURL(devicesURL))
	expectHeading(t, page, "Your devices")
}

// ---------------------------------------------------------------------------
// "Your devices".

// deviceRow is the row of the device named name in the "Devices" list.
func deviceRow(page playwright.Page, name string) playwright.Locator {
	return deviceRows(page).Filter(playwright.LocatorFilterOptions{HasText: name})
}

func deviceRows(page playwright.Page) playwright.Locator {
	return page.GetByRole("list", playwright.PageGetByRoleOptions{Name: "Devices", Exact: playwright.Bool(true)}).
		GetByRole("listitem")
}

// expectDevices checks that "Your devices" lists exactly these devices.
func expectDevices(t testing.TB, page playwright.Page, names ...string) {
	t.Helper()
	step(t, "number of devices", expect.Locator(deviceRows(page)).ToHaveCount(len(names)))
	for _, name := range names {
		name := deviceRows(page).GetByRole("heading", playwright.LocatorGetByRoleOptions{Name: name, Exact: playwright.Bool(true)})
		step(t, "device listed", expect.Locator(name).ToBeVisible())
	}
}

// expectThisDevice checks that the device named name is marked "This device".
func expectThisDevice(t testing.TB, page playwright.Page, name string) {
	t.Helper()
	step(t, name+` marked "This device"`, expect.Locator(deviceRow(page, name)).ToContainText("This device"))
	step(t, `one device marked "This device"`, expect.Locator(deviceRows(page).Filter(
		playwright.LocatorFilterOptions{HasText: "This device"})).ToHaveCount(1))
}

// renameDevice opens the "Rename NAME" disclosure of a device's row and renames it with the form
// inside.
func renameDevice(t testing.TB, page playwright.Page, from, to string) {
	t.Helper()
	row := deviceRow(page, from)
	click(t, row.Locator("summary", playwright.LocatorLocatorOptions{HasText: "Rename " + from}), "Rename "+from)
	step(t, "fill New name for "+from, row.GetByLabel("New name for "+from, playwright.LocatorGetByLabelOptions{Exact: playwright.Bool(true)}).Fill(to))
	click(t, button(page, "Save name for "+from), "Save name for "+from)
	expectNotice(t, page, "Device renamed.")
}

// signOutDevice signs another device out with the "Sign out NAME" button.
func signOutDevice(t testing.TB, page playwright.Page, name string) {
	t.Helper()
	click(t, button(page, "Sign out "+name), "Sign out "+name)
	expectNotice(t, page, "Device signed out.")
}

// securityActivity is the "Security activity" list of "Your devices".
func securityActivity(page playwright.Page) playwright.Locator {
	return page.GetByRole("list", playwright.PageGetByRoleOptions{Name: "Security activity", Exact: playwright.Bool(true)}).
		GetByRole("listitem")
}

// ---------------------------------------------------------------------------
// Cookies and time.

// cookieValue is the value of the device's cookie name for the portal ("" if
// it has none).
func cookieValue(t testing.TB, d *device, srv *server, name string) string {
	t.Helper()
	cookies, err := d.Context.Cookies(srv.URL)
	step(t, "read cookies", err)
	for _, c := range cookies {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// lapseBound is how long past its Max-Age a cookie may stay in the browser
// before a story fails: a failure bound, not a measurement.
const lapseBound = 30 * time.Second

// waitForCookieToLapse waits until the device's browser no longer sends its
// cookie name to the portal because the cookie's Max-Age has passed, and
// fails the story if that has not happened within maxAge+lapseBound. The
// cookie must be there when the wait begins.
//
// Nothing on the page tells when a token expires, and the server is another
// process whose clock cannot be moved; the browser's cookie jar is where the
// lifetime shows. The portal gives gh_access the access token's lifetime as
// its Max-Age, counted from when the browser received it, after the server
// signed the token: once the browser has dropped the cookie, the token in it
// has expired too (expiry gets no leeway).
func waitForCookieToLapse(t testing.TB, d *device, srv *server, name string, maxAge time.Duration, why string) {
	t.Helper()
	if cookieValue(t, d, srv, name) == "" {
		t.Fatalf("e2e: waiting until %s (%s lapses), but the browser has no %s cookie", why, name, name)
	}
	deadline := time.Now().Add(maxAge + lapseBound)
	for cookieValue(t, d, srv, name) != "" {
		if time.Now().After(deadline) {
			t.Fatalf("e2e: waiting until %s: the browser still sends %s, whose Max-Age is %v, %v later", why, name, maxAge, maxAge+lapseBound)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// envDocScreenshots asks the suite to rewrite docs/screenshots/*.png: `make
// screenshots` sets it. Without it the suite writes nothing under docs/.
const envDocScreenshots = "E2E_DOC_SCREENSHOTS"

// docScreenshot saves docs/screenshots/NAME.png from the SQLite run, when
// E2E_DOC_SCREENSHOTS=1 asks for it.
func docScreenshot(t testing.TB, db database, page playwright.Page, name string) {
	t.Helper()
	if db.name == "sqlite" && os.Getenv(envDocScreenshots) == "1" {
		saveDocScreenshot(t, page, name)
	}
}
