// Stories of "Your devices": signing up, renaming a device, signing devices out.

package e2e

import (
	"testing"
)

// Una signs up on her laptop and lands on "Your devices", where the laptop is
// the one device, marked "This device".
func TestSignUpLandsOnYourDevices(t *testing.T) {
	eachDatabase(t, func(t *testing.T, db database) {
		srv := db.sharedServer(t)
		laptop := openDevice(t, srv, chromeOnWindows)

		goTo(t, laptop.Page, "/login")
		click(t, link(laptop.Page, "Create an account"), "Create an account")
		expectHeading(t, laptop.Page, "Create your account")
		fill(t, laptop.Page, "Email", srv.uniqueEmail("una"))
		fill(t, laptop.Page, "Display name (optional)", "Una")
		fill(t, laptop.Page, "Password", password)
		fill(t, laptop.Page, "Confirm password", password)
		docScreenshot(t, db, laptop.Page, "signup")
		click(t, button(laptop.Page, "Create account"), "Create account")

		expectDevicesPage(t, laptop.Page)
		expectDevices(t, laptop.Page, chromeOnWindows)
		expectThisDevice(t, laptop.Page, chromeOnWindows)
	})
}

// Rae is signed in on her laptop and her phone. Each lists both. She names
// the phone from the laptop, and the phone shows its new name too.
func TestRenamedDeviceShowsOnBoth(t *testing.T) {
	eachDatabase(t, func(t *testing.T, db database) {
		srv := db.sharedServer(t)
		rae := newAccount(t, srv, "rae")
		laptop := openDevice(t, srv, chromeOnWindows)
		phone := openDevice(t, srv, safariOnIOS)

		signIn(t, laptop.Page, rae, password)
		signIn(t, phone.Page, rae, password)
		goTo(t, laptop.Page, "/devices")
		for _, d := range []*device{laptop, phone} {
			expectDevices(t, d.Page, chromeOnWindows, safariOnIOS)
		}
		expectThisDevice(t, laptop.Page, chromeOnWindows)
		expectThisDevice(t, phone.Page, safariOnIOS)

		renameDevice(t, laptop.Page, safariOnIOS, "Rae’s phone")
		expectDevices(t, laptop.Page, chromeOnWindows, "Rae’s phone")
		docScreenshot(t, db, laptop.Page, "devices")

		_, err := phone.Page.Reload()
		step(t, "reload on the phone", err)
		expectDevices(t, phone.Page, chromeOnWindows, "Rae’s phone")
		expectThisDevice(t, phone.Page, "Rae’s phone")
	})
}

// Sol sees his phone in the list on his laptop and signs it out from there:
// the phone's next page is the sign-in page; the laptop stays signed in.
func TestSignOutAnotherDevice(t *testing.T) {
	eachDatabase(t, func(t *testing.T, db database) {
		srv := db.sharedServer(t)
		sol := newAccount(t, srv, "sol")
		laptop := openDevice(t, srv, chromeOnWindows)
		phone := openDevice(t, srv, safariOnIOS)
		signIn(t, laptop.Page, sol, password)
		signIn(t, phone.Page, sol, password)

		goTo(t, laptop.Page, "/devices")
		signOutDevice(t, laptop.Page, safariOnIOS)
		expectDevices(t, laptop.Page, chromeOnWindows)

		goTo(t, phone.Page, "/devices")
		expectSignInPage(t, phone.Page)

		goTo(t, laptop.Page, "/devices")
		expectDevicesPage(t, laptop.Page)
		expectDevices(t, laptop.Page, chromeOnWindows)
	})
}

// Vic signs out all his other devices from his laptop; later, after signing
// in on the phone again, he signs out everywhere: both end on sign-in.
func TestSignOutOthersThenEverywhere(t *testing.T) {
	eachDatabase(t, func(t *testing.T, db database) {
		srv := db.sharedServer(t)
		vic := newAccount(t, srv, "vic")
		laptop := openDevice(t, srv, chromeOnWindows)
		phone := openDevice(t, srv, safariOnIOS)
		desktop := openDevice(t, srv, firefoxOnMacOS)
		for _, d := range []*device{phone, desktop, laptop} {
			signIn(t, d.Page, vic, password)
		}
		expectDevices(t, laptop.Page, chromeOnWindows, safariOnIOS, firefoxOnMacOS)

		click(t, button(laptop.Page, "Sign out all other devices"), "Sign out all other devices")
		expectNotice(t, laptop.Page, "All other devices were signed out.")
		expectDevices(t, laptop.Page, chromeOnWindows)
		step(t, `no "Sign out all other devices" with one device`,
			expect.Locator(button(laptop.Page, "Sign out all other devices")).ToHaveCount(0))
		for _, d := range []*device{phone, desktop} {
			goTo(t, d.Page, "/devices")
			expectSignInPage(t, d.Page)
		}

		signIn(t, phone.Page, vic, password)
		goTo(t, laptop.Page, "/devices")
		expectDevices(t, laptop.Page, chromeOnWindows, safariOnIOS)
		click(t, link(laptop.Page, "Sign out everywhere"), "Sign out everywhere")
		expectHeading(t, laptop.Page, "Sign out everywhere?")
		docScreenshot(t, db, laptop.Page, "confirm-signout-everywhere")
		click(t, button(laptop.Page, "Yes, sign out everywhere"), "Yes, sign out everywhere")
		expectSignInPage(t, laptop.Page)

		for _, d := range []*device{laptop, phone} {
			goTo(t, d.Page, "/devices")
			expectSignInPage(t, d.Page)
		}
	})
}
