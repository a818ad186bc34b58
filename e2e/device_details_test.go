// "Your devices" as a person tells them apart: the kind of each device as an icon, where it
// signed in from, and a page per device with its full user agent and its own activity. Under
// `make screenshots` it also draws the README's pictures of the devices page, a device's details
// page and the full security history, at a desktop's and a phone's width, in light and dark.

package e2e

import (
	"bytes"
	"image"
	"image/png"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"

	"gatehouse/services/geoip/geoiptest"
)

// chromeOnAndroidTablet is the user agent of a tablet: Chrome on Android leaves out "Mobile".
const chromeOnAndroidTablet = "Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/136.0.0.0 Safari/537.36"

// Rae is signed in on her laptop at home in Lisbon, her phone on holiday in Iceland and her
// tablet somewhere the portal cannot place. "Your devices" on the laptop shows each with the
// picture of its kind (a computer, a phone, a tablet, said in words to a screen reader), its
// IP address and, where the GeoIP database knows it, the place. The phone's "Details" link
// opens the phone's own page: its kind, where it signed in from, its full user agent (wrapped on
// a phone's screen) and its activity. "All security activity" opens the full history. Nothing
// on these pages is wider than a phone's screen, and the icons load under the portal's
// Content-Security-Policy.
func TestDevicesRaeCanTellApart(t *testing.T) {
	eachDatabase(t, func(t *testing.T, db database) {
		srv := db.startServer(t, map[string]string{
			"GATEHOUSE_GEOIP_DB":        geoiptest.WriteCity(t, "GeoLite2-City"),
			"GATEHOUSE_TRUSTED_PROXIES": "127.0.0.1/32,::1/128", // the browsers say where they are in X-Forwarded-For
		})
		rae := newAccount(t, srv, "rae")
		laptop := openDevice(t, srv, firefoxOnMacOS, from("192.0.2.44")) // Lisbon, Portugal
		phone := openDevice(t, srv, safariOnIOS, from("198.51.100.23"))  // Iceland
		tablet := newDevice(t, newBrowser(t), withName(fileSafe("Chrome on Android tablet")), withUserAgent(chromeOnAndroidTablet),
			withBaseURL(srv.URL), from("203.0.113.7")) // no place in the database
		var refused struct {
			sync.Mutex
			messages []string
		}
		laptop.Page.OnConsole(func(m playwright.ConsoleMessage) {
			if strings.Contains(m.Text(), "Content Security Policy") {
				refused.Lock()
				defer refused.Unlock()
				refused.messages = append(refused.messages, m.Text())
			}
		})
		for _, d := range []*device{tablet, phone, laptop} {
			signIn(t, d.Page, rae, password)
		}
		renameDevice(t, laptop.Page, safariOnIOS, "Rae’s phone")
		expectDevices(t, laptop.Page, firefoxOnMacOS, "Rae’s phone", "Chrome on Android")

		for _, c := range []struct{ name, kind, ip string }{
			{firefoxOnMacOS, "Computer", "192.0.2.44 · Lisbon, Portugal"},
			{"Rae’s phone", "Phone", "198.51.100.23 · Iceland"},
			{"Chrome on Android", "Tablet", "203.0.113.7"},
		} {
			row := deviceRow(laptop.Page, c.name)
			step(t, c.name+" is said to be a "+c.kind, expect.Locator(row.GetByText(c.kind, playwright.LocatorGetByTextOptions{Exact: playwright.Bool(true)})).ToHaveCount(1))
			step(t, c.name+"'s IP address and place", expect.Locator(fact(row, "IP address")).ToHaveText(c.ip))
			expectIconDrawn(t, row.Locator("svg.device-icon"), c.name)
			step(t, c.name+"'s details link", expect.Locator(link(laptop.Page, "Details of "+c.name)).ToHaveAttribute("href", regexp.MustCompile(`^/devices/[^/]+$`)))
		}
		docShots(t, db, laptop.Page, "devices", desktopLight, desktopDark, phoneLight, phoneDark)
		expectNoWiderThanAPhone(t, laptop.Page, "Your devices")

		click(t, link(laptop.Page, "Details of Rae’s phone"), "Details of Rae’s phone")
		expectHeading(t, laptop.Page, "Rae’s phone")
		expectIconDrawn(t, laptop.Page.Locator("main svg.device-icon"), "the phone's page")
		main := laptop.Page.Locator("main")
		for label, want := range map[string]string{
			"Device":          "Phone",
			"Full user agent": userAgents[safariOnIOS],
			"Status":          "Signed in",
		} {
			step(t, "the phone's "+label, expect.Locator(fact(main, label)).ToHaveText(want))
		}
		step(t, "where the phone was last", expect.Locator(fact(main, "Last active")).ToContainText("from 198.51.100.23 · Iceland"))
		step(t, "the phone's own activity", expect.Locator(laptop.Page.GetByRole("list", playwright.PageGetByRoleOptions{Name: "Activity of Rae’s phone"})).
			ToContainText("New sign-in"))
		step(t, "the phone can be signed out here", expect.Locator(button(laptop.Page, "Sign out Rae’s phone")).ToBeVisible())
		docShots(t, db, laptop.Page, "device-details", desktopLight, desktopDark, phoneLight, phoneDark)
		expectNoWiderThanAPhone(t, laptop.Page, "the phone's page")

		click(t, link(laptop.Page, "Back to your devices"), "Back to your devices")
		expectDevicesPage(t, laptop.Page)
		click(t, link(laptop.Page, "All security activity"), "All security activity")
		expectHeading(t, laptop.Page, "Security activity")
		step(t, "the history lists the sign-ins", expect.Locator(securityActivity(laptop.Page).Filter(
			playwright.LocatorFilterOptions{HasText: "New sign-in"})).ToHaveCount(3))
		docShots(t, db, laptop.Page, "activity", desktopLight, phoneDark)
		expectNoWiderThanAPhone(t, laptop.Page, "Security activity")

		refused.Lock()
		defer refused.Unlock()
		if len(refused.messages) > 0 {
			t.Errorf("the browser refused something under the Content-Security-Policy: %q", refused.messages)
		}
	})
}

// from makes the device's requests say, in X-Forwarded-For, that they come from ip: a server
// that trusts the loopback proxy takes it as the client's address.
func from(ip string) deviceOption {
	return func(c *deviceConfig) { c.opts.ExtraHttpHeaders = map[string]string{"X-Forwarded-For": ip} }
}

// fact is what a facts list inside in shows next to the term label.
func fact(in playwright.Locator, label string) playwright.Locator {
	return in.Locator("dt", playwright.LocatorLocatorOptions{HasText: regexp.MustCompile(`^` + regexp.QuoteMeta(label) + `$`)}).Locator("+ dd")
}

// expectIconDrawn waits until the <svg> icon has drawn its symbol from /static/icons.svg: a sprite
// the browser refused or could not find draws nothing, and the icon's picture stays one colour.
func expectIconDrawn(t *testing.T, icon playwright.Locator, what string) {
	t.Helper()
	step(t, what+": the icon is shown", expect.Locator(icon).ToBeVisible())
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		shot, err := icon.Screenshot(playwright.LocatorScreenshotOptions{Animations: playwright.ScreenshotAnimationsDisabled})
		step(t, what+": a picture of the icon", err)
		img, err := png.Decode(bytes.NewReader(shot))
		step(t, what+": read the picture of the icon", err)
		if drawn(img) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the icon draws nothing: the sprite did not load", what)
		}
	}
}

// drawn tells whether anything is drawn on img: a pixel of another colour than its corner's.
func drawn(img image.Image) bool {
	b := img.Bounds()
	r0, g0, b0, _ := img.At(b.Min.X, b.Min.Y).RGBA()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if r, g, bl, _ := img.At(x, y).RGBA(); r != r0 || g != g0 || bl != b0 {
				return true
			}
		}
	}
	return false
}

// number is a number that page.Evaluate gave back, or -1.
func number(v any) float64 {
	switch n := v.(type) {
	case int:
		return float64(n)
	case int64:
		return float64(n)
	case float64:
		return n
	}
	return -1
}

// expectNoWiderThanAPhone checks that the page fits a phone's screen (390 px) without scrolling
// sideways: long names and user agents wrap.
func expectNoWiderThanAPhone(t *testing.T, page playwright.Page, what string) {
	t.Helper()
	size := page.ViewportSize()
	step(t, "a phone's screen", page.SetViewportSize(390, 844))
	wide, err := page.Evaluate(`() => document.documentElement.scrollWidth`)
	step(t, "measure "+what, err)
	step(t, "the page's own size", page.SetViewportSize(size.Width, size.Height))
	if w := number(wide); w < 0 || w > 390 {
		t.Errorf("%s is %v px wide on a 390 px screen: something does not wrap", what, wide)
	}
}
