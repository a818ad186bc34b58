// Stories of the refresh token behind the pages: silent renewal, and a stolen
// cookie caught by reuse detection.

package e2e

import (
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"
)

// Ida's access token lives 3 seconds. When it has expired, her next page
// still opens without a sign-in prompt: the server renewed it, rotating her
// refresh cookie.
func TestExpiredAccessIsRenewedSilently(t *testing.T) {
	eachDatabase(t, func(t *testing.T, db database) {
		const accessTTL = 3 * time.Second
		srv := db.startServer(t, map[string]string{"GATEHOUSE_ACCESS_TTL": accessTTL.String()})
		ida := newAccount(t, srv, "ida")
		laptop := openDevice(t, srv, chromeOnWindows)

		signIn(t, laptop.Page, ida, password)
		before := cookieValue(t, laptop, srv, "gh_refresh")
		if before == "" {
			t.Fatal("no gh_refresh cookie after signing in")
		}

		waitForCookieToLapse(t, laptop, srv, "gh_access", accessTTL, "the access token expires")
		goTo(t, laptop.Page, "/devices")
		expectDevicesPage(t, laptop.Page)
		expectDevices(t, laptop.Page, chromeOnWindows)

		if after := cookieValue(t, laptop, srv, "gh_refresh"); after == "" || after == before {
			t.Errorf("gh_refresh after the silent refresh: want a new value, got %q (before: %q)", after, before)
		}
	})
}

// Someone copies Joe's refresh cookie from his laptop into another browser.
// Joe's laptop renews its token; when the thief later presents the old,
// rotated one, the server sees a replay: the thief gets the sign-in page, and
// so does the laptop, whose session was revoked. Joe signs in again and finds
// the replay in his security activity.
func TestStolenRefreshCookieIsDetected(t *testing.T) {
	eachDatabase(t, func(t *testing.T, db database) {
		// Within the grace window a rotated token from another device is only
		// refused, not taken for a replay. The window is shorter than the access
		// lifetime, so it is over once the laptop's renewed access token lapses.
		const (
			accessTTL = 2 * time.Second
			grace     = 1 * time.Second
		)
		if grace >= accessTTL {
			t.Fatalf("the story needs a grace window (%v) shorter than the access lifetime (%v)", grace, accessTTL)
		}
		srv := db.startServer(t, map[string]string{
			"GATEHOUSE_ACCESS_TTL":    accessTTL.String(),
			"GATEHOUSE_REFRESH_GRACE": grace.String(),
		})
		joe := newAccount(t, srv, "joe")
		laptop := openDevice(t, srv, chromeOnWindows)
		thief := openDevice(t, srv, firefoxOnMacOS)

		signIn(t, laptop.Page, joe, password)
		stolen := cookieValue(t, laptop, srv, "gh_refresh")
		step(t, "copy the refresh cookie", thief.Context.AddCookies([]playwright.OptionalCookie{{
			Name: "gh_refresh", Value: stolen, URL: playwright.String(srv.URL),
			HttpOnly: playwright.Bool(true), SameSite: playwright.SameSiteAttributeLax,
		}}))

		waitForCookieToLapse(t, laptop, srv, "gh_access", accessTTL, "the laptop's access token expires")
		goTo(t, laptop.Page, "/devices")
		expectDevicesPage(t, laptop.Page)
		if cookieValue(t, laptop, srv, "gh_refresh") == stolen {
			t.Fatal("the laptop's refresh cookie was not rotated")
		}

		// The renewal started the rotated token's grace window on the server
		// before the browser received the new access cookie.
		waitForCookieToLapse(t, laptop, srv, "gh_access", accessTTL,
			"the laptop's new access token expires, and before it the grace window of the rotated token")
		goTo(t, thief.Page, "/devices")
		expectSignInPage(t, thief.Page)

		goTo(t, laptop.Page, "/devices")
		expectSignInPage(t, laptop.Page)

		signIn(t, laptop.Page, joe, password)
		replay := securityActivity(laptop.Page).Filter(playwright.LocatorFilterOptions{HasText: "Someone may have a copy of your sign-in"})
		step(t, "the replay in the security activity", expect.Locator(replay).ToBeVisible())
	})
}
