// Stories told through the mail: a forgotten password, an address to verify,
// and an email change undone from the old address. Each story's server sends
// to a Mailpit of its own, and the person follows the link in the real message.

package e2e

import (
	"testing"

	"github.com/playwright-community/playwright-go"
)

// The subjects of the messages the stories read.
const (
	subjectReset           = "Reset your Gatehouse password"
	subjectPasswordChanged = "Your Gatehouse password was changed"
	subjectVerify          = "Confirm your email address for Gatehouse"
	subjectConfirmNew      = "Confirm your new email address for Gatehouse"
	subjectEmailChanged    = "Your Gatehouse email address was changed"
)

// Fay is signed in on her phone but has forgotten her password. On her laptop
// she follows "Forgot your password?" from the sign-in page, gets the link by
// email, chooses a new password and is signed in there, with every other
// device signed out: the phone is back on the sign-in page, where the old
// password no longer works and the new one does. The link works only once.
func TestForgotPasswordFromSignInPage(t *testing.T) {
	eachDatabase(t, func(t *testing.T, db database) {
		srv, inbox := db.startServerWithMail(t, map[string]string{"GATEHOUSE_RESET_TTL": "20m"})
		fay := newAccount(t, srv, "fay")
		const newPassword = "a password fay will remember"
		phone := openDevice(t, srv, safariOnIOS)
		laptop := openDevice(t, srv, chromeOnWindows)
		signIn(t, phone.Page, fay, password)

		goTo(t, laptop.Page, "/login")
		click(t, link(laptop.Page, "Forgot your password?"), "Forgot your password?")
		expectHeading(t, laptop.Page, "Reset your password")
		fill(t, laptop.Page, "Email", fay)
		click(t, button(laptop.Page, "Send the link"), "Send the link")
		step(t, "the answer names the link's lifetime", expect.Locator(laptop.Page.GetByRole("status")).
			ToContainText("If an account uses that address, we have sent it a link to set a new password. The link works once, for 20 minutes."))

		reset := waitForEmail(t, inbox, 1, fay, subjectReset)
		expectEmailSays(t, reset, "The link works once, for 20 minutes.")
		resetLink := followEmailLink(t, laptop, srv, reset, "Choose a new password")
		expectHeading(t, laptop.Page, "Choose a new password")
		fill(t, laptop.Page, "New password", newPassword)
		fill(t, laptop.Page, "New password again", newPassword)
		click(t, button(laptop.Page, "Set the password"), "Set the password")

		expectDevicesPage(t, laptop.Page)
		expectNotice(t, laptop.Page, "Your new password is set. Every other device was signed out.")
		expectDevices(t, laptop.Page, chromeOnWindows)
		expectThisDevice(t, laptop.Page, chromeOnWindows)

		goTo(t, phone.Page, "/devices")
		expectSignInPage(t, phone.Page)
		submitSignIn(t, phone.Page, fay, password)
		step(t, "the old password is refused",
			expect.Locator(phone.Page.GetByRole("alert")).ToHaveText("The email or password is not right."))
		signIn(t, phone.Page, fay, newPassword)

		changed := waitForEmail(t, inbox, 1, fay, subjectPasswordChanged)
		expectEmailSays(t, changed, "Your other devices were signed out.")

		goTo(t, laptop.Page, resetLink)
		expectHeading(t, laptop.Page, "This link no longer works")
		step(t, "no form on a used link", expect.Locator(field(laptop.Page, "New password")).ToHaveCount(0))
	})
}

// Vera signs up where addresses must be verified: the page tells her to check
// her email. She tries to sign in first and is refused, with word that a new
// link was sent, so the first email's link no longer works. The newest one
// verifies her address, and then she signs in.
func TestSignUpWithVerificationRequired(t *testing.T) {
	eachDatabase(t, func(t *testing.T, db database) {
		srv, inbox := db.startServerWithMail(t, map[string]string{"GATEHOUSE_EMAIL_VERIFICATION": "required"})
		vera := srv.uniqueEmail("vera")
		laptop := openDevice(t, srv, chromeOnWindows)

		goTo(t, laptop.Page, "/login")
		click(t, link(laptop.Page, "Create an account"), "Create an account")
		expectHeading(t, laptop.Page, "Create your account")
		fill(t, laptop.Page, "Email", vera)
		fill(t, laptop.Page, "Display name (optional)", "Vera")
		fill(t, laptop.Page, "Password", password)
		fill(t, laptop.Page, "Confirm password", password)
		click(t, button(laptop.Page, "Create account"), "Create account")
		expectHeading(t, laptop.Page, "Check your email")
		expectNotice(t, laptop.Page, "Your account is created. We sent a link to "+vera+": open it to verify your address, then sign in.")
		first := waitForEmail(t, inbox, 1, vera, subjectVerify)

		click(t, link(laptop.Page, "Continue"), "Continue")
		expectSignInPage(t, laptop.Page)
		submitSignIn(t, laptop.Page, vera, password)
		step(t, "sign-in is refused until the address is verified",
			expect.Locator(laptop.Page.GetByRole("alert")).ToHaveText("Verify your email address first: we have sent a new link to it. Use the newest email."))
		goTo(t, laptop.Page, "/devices")
		expectSignInPage(t, laptop.Page)

		second := waitForEmail(t, inbox, 2, vera, subjectVerify)
		followEmailLink(t, laptop, srv, first, "Confirm your address")
		expectHeading(t, laptop.Page, "This link no longer works")

		followEmailLink(t, laptop, srv, second, "Confirm your address")
		expectHeading(t, laptop.Page, "Verify your email address")
		click(t, button(laptop.Page, "Verify my address"), "Verify my address")
		expectNotice(t, laptop.Page, "Your email address is verified. Thank you.")

		signIn(t, laptop.Page, vera, password)
		expectDevices(t, laptop.Page, chromeOnWindows)
		expectThisDevice(t, laptop.Page, chromeOnWindows)
	})
}

// Eve, signed in on her laptop and her phone, moves her account to a new
// address from the account page. The link sent to the new address confirms
// it; she signs in with it on her desktop, and the old address no longer
// works. The old address got a notice with an undo link: following it puts
// the old address back and signs every device out. Then the old address
// signs in again, and the new one does not.
func TestEmailChangeUndoneFromOldAddress(t *testing.T) {
	eachDatabase(t, func(t *testing.T, db database) {
		srv, inbox := db.startServerWithMail(t, nil)
		oldAddress := newAccount(t, srv, "eve")
		newAddress := srv.uniqueEmail("eve.new")
		laptop := openDevice(t, srv, chromeOnWindows)
		phone := openDevice(t, srv, safariOnIOS)
		desktop := openDevice(t, srv, firefoxOnMacOS)
		signIn(t, laptop.Page, oldAddress, password)
		signIn(t, phone.Page, oldAddress, password)

		goTo(t, laptop.Page, "/devices")
		click(t, link(laptop.Page, "Account"), "Account")
		expectHeading(t, laptop.Page, "Account")
		fill(t, laptop.Page, "New email address", newAddress)
		fill(t, laptop.Page, "Your password, to confirm it is you", password)
		click(t, button(laptop.Page, "Send the link"), "Send the link")
		expectNotice(t, laptop.Page, "We sent a link to the new address. Your address changes when you open it.")

		confirm := waitForEmail(t, inbox, 1, newAddress, subjectConfirmNew)
		followEmailLink(t, laptop, srv, confirm, "Confirm your new address")
		expectHeading(t, laptop.Page, "Confirm your new email address")
		click(t, button(laptop.Page, "Use this address"), "Use this address")
		expectNotice(t, laptop.Page, "Your account now uses this email address.")
		click(t, link(laptop.Page, "Continue"), "Continue")
		expectHeading(t, laptop.Page, "Account")
		expectAccountEmail(t, laptop.Page, newAddress)

		submitSignIn(t, desktop.Page, oldAddress, password)
		step(t, "the old address no longer signs in",
			expect.Locator(desktop.Page.GetByRole("alert")).ToHaveText("The email or password is not right."))
		signIn(t, desktop.Page, newAddress, password)
		expectDevices(t, desktop.Page, chromeOnWindows, safariOnIOS, firefoxOnMacOS)

		changed := waitForEmail(t, inbox, 1, oldAddress, subjectEmailChanged)
		expectEmailSays(t, changed, "changed from "+oldAddress+" to "+newAddress)
		followEmailLink(t, phone, srv, changed, "Undo the change")
		expectHeading(t, phone.Page, "Undo the email change")
		click(t, button(phone.Page, "Undo the change and sign out everywhere"), "Undo the change and sign out everywhere")
		expectNotice(t, phone.Page, "Your old address is back and every device is signed out. Reset your password to be safe.")

		for _, d := range []*device{laptop, phone, desktop} {
			goTo(t, d.Page, "/devices")
			expectSignInPage(t, d.Page)
		}
		submitSignIn(t, desktop.Page, newAddress, password)
		step(t, "the new address no longer signs in",
			expect.Locator(desktop.Page.GetByRole("alert")).ToHaveText("The email or password is not right."))
		signIn(t, laptop.Page, oldAddress, password)
		expectDevices(t, laptop.Page, chromeOnWindows)
		click(t, link(laptop.Page, "Account"), "Account")
		expectAccountEmail(t, laptop.Page, oldAddress)
	})
}

// expectAccountEmail checks the address the account page shows (the first
// fact of its list: "Email"), with no "not verified" mark: an address that a
// link from its own mail set is verified.
func expectAccountEmail(t testing.TB, page playwright.Page, email string) {
	t.Helper()
	facts := page.GetByRole("main").GetByRole("term")
	step(t, `the first fact is "Email"`, expect.Locator(facts.First()).ToHaveText("Email"))
	address := page.GetByRole("main").GetByRole("definition").First()
	step(t, "the account's address is "+email, expect.Locator(address).ToHaveText(email))
}
