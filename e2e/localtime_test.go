// Exact times in the person's own time zone.

package e2e

import (
	"regexp"
	"testing"

	"github.com/playwright-community/playwright-go"
)

func withTimeZone(zone string) deviceOption {
	return func(c *deviceConfig) { c.opts.TimezoneId = playwright.String(zone) }
}

// Yuki in Tokyo sees the exact times of "Your devices" in her own zone, named; a browser without
// JavaScript sees them in UTC, and is told so.
func TestExactTimesInThePersonsZone(t *testing.T) {
	eachDatabase(t, func(t *testing.T, db database) {
		srv := db.sharedServer(t)
		yuki := newAccount(t, srv, "yuki")
		tokyo := openDevice(t, srv, chromeOnWindows, withTimeZone("Asia/Tokyo"))
		signIn(t, tokyo.Page, yuki, password)
		exact := tokyo.Page.Locator("span.exact-time").First()
		step(t, "the exact time names Tokyo's zone", expect.Locator(exact).ToHaveText(regexp.MustCompile(`^\(.*(GMT\+9|JST).*\)$`)))

		plain := openDevice(t, srv, firefoxOnMacOS, withTimeZone("Asia/Tokyo"), withJavaScriptDisabled())
		signIn(t, plain.Page, yuki, password)
		step(t, "without JavaScript the exact time says UTC",
			expect.Locator(plain.Page.Locator("span.exact-time").First()).ToHaveText(regexp.MustCompile(`^\(\d{1,2} \w{3} \d{4}, \d{2}:\d{2} UTC\)$`)))
	})
}
