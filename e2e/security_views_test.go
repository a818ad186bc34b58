// The sign-in security pages as a person sees them: the QR code and the key of a new
// authenticator app, the recovery codes shown once, the factor's disclosures without JavaScript,
// and how each device signed in. Under `make screenshots` it also draws the README's pictures of
// these pages, at a desktop's and a phone's width, in light and dark.

package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"

	"gatehouse/services/auth"
)

// Lea opens "Security" from the navigation: only her password protects her account. She sets
// up an authenticator app: the page draws the QR code dark on white (in a dark theme too, so that
// a camera reads it), shows the key as text, and offers the otpauth link to a phone's app. She
// types the app's code and is shown ten recovery codes, once. On her phone, in a browser without
// JavaScript, the password is followed by the app's code; there she renames the app through its
// disclosure, and the remove disclosure tells her it is her only second factor. "Your devices"
// says how the phone signed in.
func TestSecurityPagesAsLeaSeesThem(t *testing.T) {
	eachDatabase(t, func(t *testing.T, db database) {
		// A server of its own at localhost, where browsers offer passkeys: the pictures show the
		// passkey form as people see it.
		srv, base := startLocalhostServer(t, db)
		lea := newAccount(t, srv, "lea")
		laptop := openDevice(t, srv, chromeOnWindows, withBaseURL(base))
		signIn(t, laptop.Page, lea, password)

		click(t, link(laptop.Page, "Security"), "Security in the navigation")
		expectHeading(t, laptop.Page, "Sign-in security")
		step(t, "the navigation marks the page", expect.Locator(link(laptop.Page, "Security")).ToHaveAttribute("aria-current", "page"))
		step(t, "only the password protects the account",
			expect.Locator(laptop.Page.Locator("p.lead")).ToHaveText("Only your password protects your account."))

		click(t, button(laptop.Page, "Set up an authenticator app"), "Set up an authenticator app")
		expectHeading(t, laptop.Page, "Set up your authenticator app")
		qr := laptop.Page.GetByRole("img", playwright.PageGetByRoleOptions{Name: "QR code for your authenticator app", Exact: playwright.Bool(true)})
		step(t, "the QR code is drawn", expect.Locator(qr).ToBeVisible())
		box, err := qr.BoundingBox()
		step(t, "the QR code's size", err)
		if box.Width < 200 || box.Width != box.Height {
			t.Fatalf("the QR code is drawn %v×%v px, want a square of at least 200", box.Width, box.Height)
		}
		step(t, "a dark theme", laptop.Page.EmulateMedia(playwright.PageEmulateMediaOptions{ColorScheme: playwright.ColorSchemeDark}))
		background, err := laptop.Page.Locator(".qr").Evaluate("el => getComputedStyle(el).backgroundColor", nil)
		step(t, "the QR code's background", err)
		if background != "rgb(255, 255, 255)" {
			t.Fatalf("in a dark theme the QR code sits on %v, want white", background)
		}
		step(t, "back to a light theme", laptop.Page.EmulateMedia(playwright.PageEmulateMediaOptions{ColorScheme: playwright.ColorSchemeLight}))

		raw, err := laptop.Page.Locator("code.secret").TextContent()
		step(t, "read the key", err)
		if !regexp.MustCompile(`^[A-Z2-7]{16,}$`).MatchString(raw) {
			t.Fatalf("the key reads %q: want base32 with nothing between its groups", raw)
		}
		step(t, "the link for a phone's app", expect.Locator(link(laptop.Page, "Open in your authenticator app")).
			ToHaveAttribute("href", regexp.MustCompile(`^otpauth://totp/.*secret=`+raw)))
		docShots(t, db, laptop.Page, "totp-enrol", desktopLight, phoneDark)

		code, err := auth.TOTPCode(raw, time.Now())
		step(t, "compute the app's code", err)
		fill(t, laptop.Page, "Name for this app", "Lea's phone")
		fill(t, laptop.Page, "6-digit code from the app", code)
		click(t, button(laptop.Page, "Turn on"), "Turn on")

		expectHeading(t, laptop.Page, "Save your recovery codes")
		step(t, "the factor is on", expect.Locator(laptop.Page.GetByRole("status")).ToHaveText("Second factor added."))
		codes := laptop.Page.GetByRole("list", playwright.PageGetByRoleOptions{Name: "Recovery codes"}).Locator("li")
		step(t, "ten recovery codes", expect.Locator(codes).ToHaveCount(auth.RecoveryCodeCount))
		step(t, "shown once", expect.Locator(laptop.Page.Locator("main")).ToContainText("Once you leave this page, they cannot be shown again."))
		docShots(t, db, laptop.Page, "recovery-codes", desktopLight, phoneDark)
		click(t, link(laptop.Page, "I have saved them"), "I have saved them")
		expectHeading(t, laptop.Page, "Sign-in security")
		step(t, "the app is listed", expect.Locator(factorRow(laptop.Page, "Lea's phone")).ToContainText("Authenticator app"))
		step(t, "ten codes left", expect.Locator(laptop.Page.Locator("main")).ToContainText("You have 10 recovery codes left."))

		phone := openDevice(t, srv, safariOnIOS, withBaseURL(base), withJavaScriptDisabled())
		step(t, "a phone's screen", phone.Page.SetViewportSize(390, 844))
		submitSignIn(t, phone.Page, lea, password)
		expectHeading(t, phone.Page, "Confirm it's you")
		docShots(t, db, phone.Page, "second-factor", phoneLight)
		// The laptop used this time step's code; the app's next one is accepted (one step of skew).
		code, err = auth.TOTPCode(raw, time.Now().Add(30*time.Second))
		step(t, "compute the app's next code", err)
		fill(t, phone.Page, "Code from your app, or a recovery code", code)
		click(t, button(phone.Page, "Continue"), "Continue")
		expectDevicesPage(t, phone.Page)
		step(t, "the phone's row says how it signed in",
			expect.Locator(deviceRow(phone.Page, safariOnIOS).Locator("dt", playwright.LocatorLocatorOptions{HasText: "Signed in with"}).Locator("+ dd")).
				ToHaveText("Password and authenticator app"))

		goTo(t, phone.Page, "/account/security")
		row := factorRow(phone.Page, "Lea's phone")
		click(t, row.Locator("summary", playwright.LocatorLocatorOptions{HasText: "Rename"}), "Rename, without JavaScript")
		fill(t, phone.Page, "New name for Lea's phone", "Lea's Pixel")
		click(t, button(phone.Page, "Save name for Lea's phone"), "Save name")
		expectNotice(t, phone.Page, "Renamed.")
		row = factorRow(phone.Page, "Lea's Pixel")
		click(t, row.Locator("summary", playwright.LocatorLocatorOptions{HasText: "Remove"}), "Remove, without JavaScript")
		step(t, "the last factor's warning", expect.Locator(row.Locator(".alert")).ToHaveText(
			"This is your only second factor. Once it is removed, your password alone signs you in, and your recovery codes stop working."))
		step(t, "the remove button", expect.Locator(button(phone.Page, "Yes, remove Lea's Pixel")).ToBeVisible())

		goTo(t, laptop.Page, "/account/security")
		step(t, "the script shows the passkey form", expect.Locator(button(laptop.Page, "Add a passkey")).ToBeVisible())
		docShots(t, db, laptop.Page, "security", phoneLight, phoneDark)
		click(t, factorRow(laptop.Page, "Lea's Pixel").Locator("summary", playwright.LocatorLocatorOptions{HasText: "Remove"}), "Remove")
		docShots(t, db, laptop.Page, "security", desktopLight, desktopDark)
	})
}

// factorRow is the row of "Second factors and passkeys" headed name.
func factorRow(page playwright.Page, name string) playwright.Locator {
	return page.Locator("li.factor").Filter(playwright.LocatorFilterOptions{
		Has: page.GetByRole("heading", playwright.PageGetByRoleOptions{Name: name, Exact: playwright.Bool(true)}),
	})
}

// view is a screen and a theme a doc screenshot is drawn in.
type view struct {
	name          string // in the file name: NAME-desktop-light.png
	width, height int
	scheme        *playwright.ColorScheme
}

var (
	desktopLight = view{"desktop-light", 1280, 800, playwright.ColorSchemeLight}
	desktopDark  = view{"desktop-dark", 1280, 800, playwright.ColorSchemeDark}
	phoneLight   = view{"phone-light", 390, 844, playwright.ColorSchemeLight}
	phoneDark    = view{"phone-dark", 390, 844, playwright.ColorSchemeDark}
)

// docShots saves docs/screenshots/NAME-VIEW.png of the page in each view (under `make
// screenshots` only: see docScreenshot), then gives the page back its size and a light theme.
func docShots(t *testing.T, db database, page playwright.Page, name string, views ...view) {
	t.Helper()
	size := page.ViewportSize()
	for _, v := range views {
		step(t, "the "+v.name+" view", page.SetViewportSize(v.width, v.height))
		step(t, "the "+v.name+" theme", page.EmulateMedia(playwright.PageEmulateMediaOptions{ColorScheme: v.scheme}))
		docScreenshot(t, db, page, strings.Join([]string{name, v.name}, "-"))
	}
	step(t, "the page's own size", page.SetViewportSize(size.Width, size.Height))
	step(t, "a light theme", page.EmulateMedia(playwright.PageEmulateMediaOptions{ColorScheme: playwright.ColorSchemeLight}))
}
