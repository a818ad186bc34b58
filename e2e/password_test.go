// The story of a password change.

package e2e

import (
	"testing"
)

// Pat changes her password on the laptop: the laptop stays signed in, the
// phone is signed out, the old password no longer works and the new one does.
func TestChangePasswordSignsOutOtherDevices(t *testing.T) {
	eachDatabase(t, func(t *testing.T, db database) {
		srv := db.sharedServer(t)
		pat := newAccount(t, srv, "pat")
		const newPassword = "a brand new passphrase"
		laptop := openDevice(t, srv, chromeOnWindows)
		phone := openDevice(t, srv, safariOnIOS)
		signIn(t, laptop.Page, pat, password)
		signIn(t, phone.Page, pat, password)

		click(t, link(laptop.Page, "Account"), "Account")
		expectHeading(t, laptop.Page, "Account")
		docScreenshot(t, db, laptop.Page, "account")
		fill(t, laptop.Page, "Current password", password)
		fill(t, laptop.Page, "New password", newPassword)
		fill(t, laptop.Page, "Confirm new password", newPassword)
		click(t, button(laptop.Page, "Change password"), "Change password")
		expectNotice(t, laptop.Page, "Password changed. Every other device was signed out.")

		goTo(t, laptop.Page, "/devices")
		expectDevicesPage(t, laptop.Page)
		expectDevices(t, laptop.Page, chromeOnWindows)

		goTo(t, phone.Page, "/devices")
		expectSignInPage(t, phone.Page)
		submitSignIn(t, phone.Page, pat, password)
		step(t, "the old password is refused",
			expect.Locator(phone.Page.GetByRole("alert")).ToHaveText("The email or password is not right."))
		signIn(t, phone.Page, pat, newPassword)
	})
}
