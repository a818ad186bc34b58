// Stories of forms that are refused: every problem is shown at once, and an
// error summary at the top of the form takes the focus and links to each field.

package e2e

import (
	"testing"

	"github.com/playwright-community/playwright-go"
)

// errorSummary is the error summary of the page: the box headed "There is a
// problem" at the top of the refused form.
func errorSummary(page playwright.Page) playwright.Locator {
	return page.Locator(".error-summary").Filter(playwright.LocatorFilterOptions{
		Has: page.GetByRole("heading", playwright.PageGetByRoleOptions{Name: "There is a problem", Exact: playwright.Bool(true)}),
	})
}

// expectErrorSummary checks that the page arrived with the focus on its error
// summary, an alert that lists these errors as links, in this order.
func expectErrorSummary(t testing.TB, page playwright.Page, lines ...string) {
	t.Helper()
	summary := errorSummary(page)
	step(t, "the error summary has the focus", expect.Locator(summary).ToBeFocused())
	step(t, "the error summary is an alert", expect.Locator(summary.GetByRole("alert")).ToContainText("There is a problem"))
	step(t, "the error summary lists every error", expect.Locator(summary.GetByRole("link")).ToHaveText(lines))
}

// Rae sends the sign-up form empty, once in a browser without JavaScript and
// once with it: the page comes back with the focus on a summary of every field
// that needs her, in the form's order, not on the email alone. With the
// keyboard she follows its first link and lands in the Email field; she fixes
// everything and is in.
func TestFormsEmptySignUpShowsEveryError(t *testing.T) {
	eachDatabase(t, func(t *testing.T, db database) {
		srv := db.sharedServer(t)
		for _, browser := range []struct {
			name string
			opts []deviceOption
		}{{"without JavaScript", []deviceOption{withJavaScriptDisabled()}}, {"with JavaScript", nil}} {
			t.Run(browser.name, func(t *testing.T) {
				rae := srv.uniqueEmail("rae")
				page := openDevice(t, srv, chromeOnWindows, browser.opts...).Page

				goTo(t, page, "/signup")
				expectHeading(t, page, "Create your account")
				click(t, button(page, "Create account"), "Create account with nothing filled in")
				expectHeading(t, page, "Create your account")
				expectErrorSummary(t, page,
					"Email: Enter your email address.",
					"Password: Choose a password of at least 10 characters.",
					"Confirm password: Type the password again.")
				if browser.opts != nil {
					docScreenshot(t, db, page, "signup-errors")
				}

				step(t, "press Tab", page.Keyboard().Press("Tab"))
				first := errorSummary(page).GetByRole("link").First()
				step(t, "the first link has the focus", expect.Locator(first).ToBeFocused())
				step(t, "press Enter", page.Keyboard().Press("Enter"))
				step(t, "the Email field has the focus", expect.Locator(field(page, "Email")).ToBeFocused())

				step(t, "type the email", page.Keyboard().Type(rae))
				fill(t, page, "Password", password)
				fill(t, page, "Confirm password", password)
				click(t, button(page, "Create account"), "Create account")
				expectDevicesPage(t, page)
			})
		}
	})
}

// Rae gives her account a display name on the account page; a name with a
// text-direction character is refused, with the focus on the form's error
// summary, whose link takes her back to the field.
func TestFormsDisplayName(t *testing.T) {
	eachDatabase(t, func(t *testing.T, db database) {
		srv := db.sharedServer(t)
		rae := newAccount(t, srv, "rae-name")
		page := openDevice(t, srv, chromeOnWindows, withJavaScriptDisabled()).Page
		signIn(t, page, rae, password)

		click(t, link(page, "Account"), "Account")
		expectHeading(t, page, "Account")
		fill(t, page, "Display name", "Rae \u202eseno\u202c")
		click(t, button(page, "Save display name"), "Save display name")
		expectHeading(t, page, "Account")
		expectErrorSummary(t, page, "Display name: Remove the control and text-direction characters.")
		click(t, errorSummary(page).GetByRole("link").First(), "the summary's link")
		step(t, "the Display name field has the focus", expect.Locator(field(page, "Display name")).ToBeFocused())

		step(t, "type the name", field(page, "Display name").Fill("Rae Jones"))
		click(t, button(page, "Save display name"), "Save display name")
		expectNotice(t, page, "Your display name is saved.")
		step(t, "the field holds the name", expect.Locator(field(page, "Display name")).ToHaveValue("Rae Jones"))
		step(t, "no error summary", expect.Locator(errorSummary(page)).ToHaveCount(0))
	})
}

// The error summaries pass the accessibility check (axe-core, WCAG 2.2 A and
// AA) at desktop and phone widths, in light and dark mode, on the forms that
// show several errors at once. The pages render the same on both databases,
// so this runs on SQLite.
func TestFormsErrorSummariesAreAccessible(t *testing.T) {
	t.Parallel()
	source := axeSource(t)
	srv := database{name: "sqlite"}.sharedServer(t)
	d := newDevice(t, newBrowser(t), withName("a11y-forms"), withBaseURL(srv.URL), withoutCSP())
	step(t, "load axe", d.Context.AddInitScript(playwright.Script{Content: playwright.String(source)}))
	a := &axeChecker{t: t, d: d}
	page := d.Page

	goTo(t, page, "/signup")
	click(t, button(page, "Create account"), "Create account with nothing filled in")
	expectHeading(t, page, "Create your account")
	a.check("sign-up, every field refused")

	goTo(t, page, "/password/forgot")
	fill(t, page, "Email", "not an address")
	click(t, button(page, "Send the link"), "Send the link")
	expectHeading(t, page, "Reset your password")
	a.check("forgot password, not an address")

	signIn(t, page, newAccount(t, srv, "axel"), password)
	goTo(t, page, "/account")
	fill(t, page, "Display name", "Axel\u202e")
	click(t, button(page, "Save display name"), "Save display name")
	expectHeading(t, page, "Account")
	a.check("account, display name refused")
	click(t, button(page, "Change password"), "Change password with nothing filled in")
	expectHeading(t, page, "Account")
	a.check("account, password change refused")
	t.Logf("axe-core %s: %d page states × %d variants checked", axeVersion, a.states, len(axeVariants))
}
