// The stories of a second factor: an authenticator app, and the recovery codes
// that come with it.

package e2e

import (
	"encoding/base64"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"

	"gatehouse/services/auth"
)

var (
	secondStepURL    = regexp.MustCompile(`/login/second-factor(\?.*)?$`)
	recoveryCodeText = regexp.MustCompile(`^[a-z0-9]{5}(-[a-z0-9]{5}){4}$`)
)

// Tess turns on an authenticator app on her laptop and saves her recovery
// codes; signing in on her phone then asks for the app's code after the
// password, and the phone's session says it signed in with both.
func TestAuthenticatorAppGuardsTheNextSignIn(t *testing.T) {
	eachDatabase(t, func(t *testing.T, db database) {
		srv := db.sharedServer(t)
		tess := newAccount(t, srv, "tess")
		laptop := openDevice(t, srv, chromeOnWindows)
		signIn(t, laptop.Page, tess, password)

		secret, codes := turnOnAuthenticatorApp(t, laptop.Page, "Tess's phone")
		if len(codes) != auth.RecoveryCodeCount {
			t.Fatalf("%d recovery codes shown, want %d: %v", len(codes), auth.RecoveryCodeCount, codes)
		}

		phone := openDevice(t, srv, safariOnIOS)
		submitSignIn(t, phone.Page, tess, password)
		expectSecondStep(t, phone.Page)
		// The laptop's confirmation used this time step's code; the app's next
		// code is the one a person would type now (one step of skew is allowed).
		code, err := auth.TOTPCode(secret, time.Now().Add(30*time.Second))
		step(t, "compute the app's code", err)
		enterSecondFactorCode(t, phone.Page, code)
		expectDevicesPage(t, phone.Page)
		expectAMR(t, phone, srv, "pwd", "otp")

		// The same code again, on another device, is refused.
		tablet := openDevice(t, srv, firefoxOnMacOS)
		submitSignIn(t, tablet.Page, tess, password)
		expectSecondStep(t, tablet.Page)
		enterSecondFactorCode(t, tablet.Page, code)
		expectSecondStep(t, tablet.Page)
		step(t, "a used code is refused", expect.Locator(tablet.Page.Locator(".field-error, [role=alert]").First()).ToContainText("not right"))
	})
}

// Uma lost her phone: a recovery code signs her in instead, once, and her
// security activity says one was used.
func TestRecoveryCodeSignsInOnce(t *testing.T) {
	eachDatabase(t, func(t *testing.T, db database) {
		srv := db.sharedServer(t)
		uma := newAccount(t, srv, "uma")
		laptop := openDevice(t, srv, chromeOnWindows)
		signIn(t, laptop.Page, uma, password)
		_, codes := turnOnAuthenticatorApp(t, laptop.Page, "Uma's phone")

		borrowed := openDevice(t, srv, firefoxOnMacOS)
		submitSignIn(t, borrowed.Page, uma, password)
		expectSecondStep(t, borrowed.Page)
		enterSecondFactorCode(t, borrowed.Page, strings.ToUpper(codes[3]))
		expectDevicesPage(t, borrowed.Page)
		expectAMR(t, borrowed, srv, "pwd", "rec")
		step(t, "the activity says a recovery code was used",
			expect.Locator(securityActivity(borrowed.Page).Filter(playwright.LocatorFilterOptions{HasText: "A recovery code was used to sign in"})).ToHaveCount(1))

		again := openDevice(t, srv, safariOnIOS)
		submitSignIn(t, again.Page, uma, password)
		expectSecondStep(t, again.Page)
		enterSecondFactorCode(t, again.Page, codes[3])
		expectSecondStep(t, again.Page)
		step(t, "a used recovery code is refused", expect.Locator(again.Page.Locator(".field-error, [role=alert]").First()).ToContainText("not right"))
		enterSecondFactorCode(t, again.Page, codes[4])
		expectDevicesPage(t, again.Page)
	})
}

// turnOnAuthenticatorApp adds an authenticator app on the security page, as a
// person with the app would: it reads the key shown beside the QR code, types
// the app's code, and returns the key and the recovery codes the page shows.
func turnOnAuthenticatorApp(t testing.TB, page playwright.Page, name string) (string, []string) {
	t.Helper()
	goTo(t, page, "/account/security")
	click(t, page.Locator(`form[action="/account/security/totp"] button[type=submit]`), "set up an authenticator app")
	step(t, "the QR code is drawn", expect.Locator(page.GetByRole("img", playwright.PageGetByRoleOptions{Name: regexp.MustCompile("QR code")})).ToBeVisible())
	raw, err := page.Locator("code.secret").TextContent()
	step(t, "read the key", err)
	secret := strings.Join(strings.Fields(raw), "")
	code, err := auth.TOTPCode(secret, time.Now())
	step(t, "compute the app's code", err)
	form := page.Locator(`form[action="/account/security/totp/confirm"]`)
	step(t, "name the app", form.Locator(`input[name="name"]`).Fill(name))
	step(t, "type the code", form.Locator(`input[name="code"]`).Fill(code))
	click(t, form.Locator(`button[type=submit]`), "turn the app on")
	step(t, "the recovery codes are shown", expect.Locator(page.Locator("h1")).ToContainText("recovery codes"))
	texts, err := page.Locator("code").AllTextContents()
	step(t, "read the recovery codes", err)
	var codes []string
	for _, s := range texts {
		if s = strings.TrimSpace(s); recoveryCodeText.MatchString(s) {
			codes = append(codes, s)
		}
	}
	return secret, codes
}

func expectSecondStep(t testing.TB, page playwright.Page) {
	t.Helper()
	step(t, "on the second step", expect.Page(page).ToHaveURL(secondStepURL))
	expectHeading(t, page, "Confirm it's you")
}

func enterSecondFactorCode(t testing.TB, page playwright.Page, code string) {
	t.Helper()
	form := page.Locator(`form[action="/login/second-factor"]`).First()
	step(t, "type the code", form.Locator(`input[name="code"]`).Fill(code))
	click(t, form.Locator(`button[type=submit]`), "continue")
}

// expectAMR checks how the device's session signed in, as its access token
// (the access cookie) says.
func expectAMR(t testing.TB, d *device, srv *server, want ...string) {
	t.Helper()
	token := cookieValue(t, d, srv, "gh_access")
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("access cookie %q is not a JWT", token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	step(t, "decode the access token", err)
	var claims struct {
		AMR []string `json:"amr"`
	}
	step(t, "read the access token", json.Unmarshal(payload, &claims))
	if !slices.Equal(claims.AMR, want) {
		t.Fatalf("amr %v, want %v", claims.AMR, want)
	}
}
