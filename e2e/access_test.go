// Stories of people who use the portal by keyboard only, or without JavaScript.

package e2e

import (
	"testing"

	"github.com/playwright-community/playwright-go"
)

// isFocused tells whether the element is the page's active element.
func isFocused(t testing.TB, target playwright.Locator) bool {
	t.Helper()
	focused, err := target.Evaluate("el => el === document.activeElement", nil)
	step(t, "read the focus", err)
	return focused == true
}

// tabTo presses Tab until target has the focus (at most max times).
func tabTo(t testing.TB, page playwright.Page, target playwright.Locator, what string, max int) {
	t.Helper()
	for i := 0; i < max && !isFocused(t, target); i++ {
		step(t, "press Tab", page.Keyboard().Press("Tab"))
	}
	if !isFocused(t, target) {
		t.Fatalf("%s not reached with %d presses of Tab", what, max)
	}
}

// outline is the computed outline of the focused element.
type outline struct {
	Element string  // tag name of document.activeElement
	Style   string  // outline-style
	Width   float64 // outline-width in px
}

func focusedOutline(t testing.TB, page playwright.Page) outline {
	t.Helper()
	v, err := page.Evaluate(`() => {
		const el = document.activeElement, s = getComputedStyle(el);
		return {element: el.tagName, style: s.outlineStyle, width: parseFloat(s.outlineWidth) || 0};
	}`)
	step(t, "read the focused element's outline", err)
	m, _ := v.(map[string]any)
	o := outline{}
	o.Element, _ = m["element"].(string)
	o.Style, _ = m["style"].(string)
	switch w := m["width"].(type) {
	case float64:
		o.Width = w
	case int:
		o.Width = float64(w)
	}
	return o
}

// Kim signs in with the keyboard alone, and can see where the focus is.
func TestKeyboardOnlySignIn(t *testing.T) {
	eachDatabase(t, func(t *testing.T, db database) {
		srv := db.sharedServer(t)
		kim := newAccount(t, srv, "kim")
		laptop := openDevice(t, srv, chromeOnWindows)
		page := laptop.Page

		goTo(t, page, "/login")
		expectHeading(t, page, "Sign in")
		docScreenshot(t, db, page, "login")

		tabTo(t, page, field(page, "Email"), "the Email field", 5)
		step(t, "type the email", page.Keyboard().Type(kim))
		step(t, "press Tab", page.Keyboard().Press("Tab"))
		step(t, "Password has the focus", expect.Locator(field(page, "Password")).ToBeFocused())
		step(t, "type the password", page.Keyboard().Type(password))
		step(t, "press Enter", page.Keyboard().Press("Enter"))
		expectDevicesPage(t, page)

		step(t, "press Tab", page.Keyboard().Press("Tab"))
		if f := focusedOutline(t, page); f.Element == "BODY" || f.Style == "none" || f.Width <= 0 {
			t.Errorf("after Tab on the devices page, the focused element has no visible outline: %+v", f)
		}
	})
}

// Nia's browsers run no JavaScript: she still signs in, renames a device and
// signs another one out.
func TestWorksWithoutJavaScript(t *testing.T) {
	eachDatabase(t, func(t *testing.T, db database) {
		srv := db.sharedServer(t)
		nia := newAccount(t, srv, "nia")
		laptop := openDevice(t, srv, chromeOnWindows, withJavaScriptDisabled())
		phone := openDevice(t, srv, safariOnIOS, withJavaScriptDisabled())
		signIn(t, phone.Page, nia, password)
		signIn(t, laptop.Page, nia, password)
		expectDevices(t, laptop.Page, chromeOnWindows, safariOnIOS)

		renameDevice(t, laptop.Page, chromeOnWindows, "Nia’s laptop")
		expectDevices(t, laptop.Page, "Nia’s laptop", safariOnIOS)
		expectThisDevice(t, laptop.Page, "Nia’s laptop")

		signOutDevice(t, laptop.Page, safariOnIOS)
		expectDevices(t, laptop.Page, "Nia’s laptop")
		goTo(t, phone.Page, "/devices")
		expectSignInPage(t, phone.Page)
	})
}
