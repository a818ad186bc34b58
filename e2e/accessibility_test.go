// The accessibility check: axe-core, run in Chromium on every page state a
// person can reach, at desktop and phone widths, in light and dark mode.

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"

	"gatehouse/services/auth"
)

// axeVersion is the axe-core that .ci/e2e-setup.sh unpacks from npm.
const axeVersion = "4.14.1"

// wcagTags are the rules checked: WCAG 2.0, 2.1 and 2.2, levels A and AA.
const wcagTags = `['wcag2a','wcag2aa','wcag21a','wcag21aa','wcag22a','wcag22aa']`

// axeSource reads axe.min.js, skipping (or, under CI=true, failing) when the setup has not run.
func axeSource(t *testing.T) string {
	t.Helper()
	path := os.Getenv("E2E_AXE_PATH")
	if path == "" {
		home, _ := os.UserHomeDir()
		path = filepath.Join(home, ".cache", "gatehouse", "axe-core-"+axeVersion)
	}
	src, err := os.ReadFile(filepath.Join(path, "package", "axe.min.js"))
	if err != nil {
		msg := fmt.Sprintf("e2e: axe-core %s not found (%v); run .ci/e2e-setup.sh", axeVersion, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return string(src)
}

// withoutCSP lets the device load axe-core into every page (AddInitScript): the portal's
// Content-Security-Policy allows only its own scripts, so this device bypasses it, only for the
// check, never for the stories.
func withoutCSP() deviceOption {
	return func(c *deviceConfig) { c.opts.BypassCSP = playwright.Bool(true) }
}

type axeVariant struct {
	name   string
	width  int
	height int
	scheme *playwright.ColorScheme
}

var axeVariants = []axeVariant{
	{"desktop light", 1280, 800, playwright.ColorSchemeLight},
	{"desktop dark", 1280, 800, playwright.ColorSchemeDark},
	{"phone light", 390, 844, playwright.ColorSchemeLight},
	{"phone dark", 390, 844, playwright.ColorSchemeDark},
}

// axeChecker runs axe on the device's current page in every variant.
type axeChecker struct {
	t      *testing.T
	d      *device
	states int
}

func (a *axeChecker) check(state string) {
	a.t.Helper()
	a.states++
	for _, v := range axeVariants {
		step(a.t, "viewport", a.d.Page.SetViewportSize(v.width, v.height))
		step(a.t, "color scheme", a.d.Page.EmulateMedia(playwright.PageEmulateMediaOptions{ColorScheme: v.scheme}))
		got, err := a.d.Page.Evaluate(`async () => {
			const r = await axe.run(document, {runOnly: {type: 'tag', values: ` + wcagTags + `}});
			return r.violations.map(v => v.id + ' (' + v.impact + '): ' + v.help + ' at ' +
				v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '));
		}`)
		step(a.t, "run axe on "+state, err)
		list, _ := got.([]any)
		for _, violation := range list {
			a.t.Errorf("%s, %s: %v", state, v.name, violation)
		}
		if os.Getenv("E2E_AXE_SHOTS") != "" { // to look at every state as people see it
			saveArtifactScreenshot(a.t, a.d.Page, state+", "+v.name)
		}
	}
}

// Every page state of the portal has no WCAG 2.2 A or AA violation that axe-core finds, at
// desktop and phone widths, in light and dark mode. The pages render the same on both databases,
// so this runs on SQLite.
func TestEveryPageStateIsAccessible(t *testing.T) {
	t.Parallel()
	source := axeSource(t)
	srv := database{name: "sqlite"}.sharedServer(t)
	browser := newBrowser(t)
	open := func(name string) (*device, *axeChecker) {
		d := newDevice(t, browser, withName(name), withBaseURL(srv.URL), withoutCSP())
		step(t, "load axe", d.Context.AddInitScript(playwright.Script{Content: playwright.String(source)}))
		return d, &axeChecker{t: t, d: d}
	}
	vera := newAccount(t, srv, "vera")
	d, a := open("a11y")
	p := d.Page

	goTo(t, p, "/login")
	a.check("sign-in")
	submitSignIn(t, p, vera, "not the password")
	a.check("sign-in, wrong password")
	goTo(t, p, "/signup")
	a.check("sign-up")
	fill(t, p, "Email", "not an address")
	click(t, p.Locator(`form[action="/signup"] button[type=submit]`), "create the account")
	a.check("sign-up, errors")
	goTo(t, p, "/password/forgot")
	a.check("forgot password")
	goTo(t, p, "/password/reset?token=ghr_not-a-real-token")
	a.check("reset link that does not work")
	goTo(t, p, "/no-such-page")
	a.check("404")

	signIn(t, p, vera, password)
	a.check("your devices")
	click(t, p.Locator("ul.devices details.rename summary").First(), "Rename")
	step(t, "clear the new name", p.Locator(`ul.devices details.rename input[name="name"]`).First().Fill(""))
	click(t, p.Locator(`ul.devices details.rename button[type="submit"]`).First(), "Save name")
	step(t, "the rename is refused", expect.Locator(p.Locator(".error-summary")).ToBeVisible())
	a.check("your devices, rename refused")
	goTo(t, p, "/account")
	a.check("account")
	fill(t, p, "New email address", "not-an-address")
	click(t, button(p, "Send the link"), "Send the link")
	step(t, "the change is refused", expect.Locator(p.Locator(`form[action="/account/email"] .error-summary-list li`)).ToHaveCount(2))
	a.check("account, email change refused")
	goTo(t, p, "/account/activity")
	a.check("security activity")
	goTo(t, p, "/devices/signout-everywhere")
	a.check("sign out everywhere?")
	goTo(t, p, "/account/security")
	a.check("sign-in security, no factor")
	click(t, p.Locator(`form[action="/account/security/totp"] button[type=submit]`), "set up an authenticator app")
	a.check("authenticator app set-up")
	form := p.Locator(`form[action="/account/security/totp/confirm"]`)
	step(t, "type a wrong code", form.Locator(`input[name="code"]`).Fill("000000"))
	click(t, form.Locator(`button[type=submit]`), "turn the app on")
	a.check("authenticator app set-up, wrong code")
	secret, _ := turnOnAuthenticatorApp(t, p, "Vera's phone")
	a.check("recovery codes")
	goTo(t, p, "/account/security")
	a.check("sign-in security, one factor")
	goTo(t, p, "/account/security?done=totp-already-on-codes") // the set-up submitted twice
	a.check("sign-in security, app already on")

	other, b := open("a11y-second-step")
	submitSignIn(t, other.Page, vera, password)
	expectSecondStep(t, other.Page)
	b.check("second step")
	enterSecondFactorCode(t, other.Page, "123")
	b.check("second step, wrong code")
	code, err := auth.TOTPCode(secret, time.Now().Add(30*time.Second))
	step(t, "compute the code", err)
	enterSecondFactorCode(t, other.Page, code)
	expectDevicesPage(t, other.Page)
	// Each row's "Details of LABEL" link opens that device's page: this device's, then the
	// first browser's (which has a sign-out button). A missing link fails the check.
	for i, state := range []string{"device details, this device", "device details, another device"} {
		goTo(t, other.Page, "/devices")
		details := deviceRows(other.Page).Nth(i).GetByRole("link", playwright.LocatorGetByRoleOptions{Name: regexp.MustCompile(`^Details of `)})
		step(t, state+": the row's details link", expect.Locator(details).ToHaveCount(1))
		click(t, details, state)
		step(t, state+": on the device's page", expect.Page(other.Page).ToHaveURL(regexp.MustCompile(`/devices/[^/?]+$`)))
		expectHeading(t, other.Page, "Activity of this device")
		b.check(state)
	}

	// The re-authentication prompt: a server that asks for the password again after 2 seconds.
	strict := database{name: "sqlite"}.startServer(t, map[string]string{"GATEHOUSE_REAUTH_WINDOW": "2s"})
	wes := newAccount(t, strict, "wes")
	prompt := newDevice(t, browser, withName("a11y-prompt"), withBaseURL(strict.URL), withoutCSP())
	step(t, "load axe", prompt.Context.AddInitScript(playwright.Script{Content: playwright.String(source)}))
	c := &axeChecker{t: t, d: prompt}
	signIn(t, prompt.Page, wes, password)
	time.Sleep(3 * time.Second) // past the 2-second window: the next sensitive page asks again
	goTo(t, prompt.Page, "/account/security")
	expectHeading(t, prompt.Page, "Confirm it's you")
	c.check("confirm it's you")

	t.Logf("axe-core %s: %d page states × %d variants checked", axeVersion, a.states+b.states+c.states, len(axeVariants))
}
