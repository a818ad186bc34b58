// The story of a passkey: added on the security page, then signing in alone on
// another browser, in Chromium with the WebAuthn domain's virtual authenticator.

package e2e

import (
	"fmt"
	"net"
	"regexp"
	"testing"

	"github.com/playwright-community/playwright-go"
)

// Pia adds a passkey on her laptop, where the security page asks her to name
// it and then shows her recovery codes. The passkey syncs to her phone and her
// tablet, as passkeys do; on each fresh browser she signs in with it alone, no
// email and no password, and the session says it signed in with a passkey. On
// her desk computer she types her password, and the passkey is the second step.
// A browser without JavaScript is offered no passkey at all.
func TestPasskeySignsInAlone(t *testing.T) {
	eachDatabase(t, func(t *testing.T, db database) {
		srv, base := startLocalhostServer(t, db)
		pia := newAccount(t, srv, "pia")

		laptop := openDevice(t, srv, chromeOnWindows, withBaseURL(base))
		laptopKey := addVirtualAuthenticator(t, laptop)
		signIn(t, laptop.Page, pia, password)
		goTo(t, laptop.Page, "/account/security")
		add := laptop.Page.Locator(`form[data-passkey="register"]`)
		step(t, "the script shows the passkey form", expect.Locator(add).ToBeVisible())
		step(t, "name the passkey", add.GetByLabel("Name it, so you can tell it apart").Fill("Pia's passkey"))
		click(t, add.GetByRole("button", playwright.LocatorGetByRoleOptions{Name: "Add a passkey"}), "Add a passkey")
		step(t, "the recovery codes are shown", expect.Locator(laptop.Page.Locator("h1")).ToContainText("recovery codes"))
		goTo(t, laptop.Page, "/account/security")
		step(t, "the security page lists the passkey",
			expect.Locator(laptop.Page.Locator("li.factor").Filter(playwright.LocatorFilterOptions{HasText: "Pia's passkey"})).ToHaveCount(1))

		// The laptop keeps that passkey already: adding another there says so
		// next to the button, and the page stays.
		add = laptop.Page.Locator(`form[data-passkey="register"]`)
		click(t, add.GetByRole("button", playwright.LocatorGetByRoleOptions{Name: "Add a passkey"}), "Add a passkey again")
		step(t, "the page says why no passkey was added",
			expect.Locator(add.GetByRole("alert")).ToHaveText("This device already keeps a passkey for your account."))

		credentials := laptopKey.credentials(t)
		if len(credentials) != 1 || credentials[0]["isResidentCredential"] != true {
			t.Fatalf("the laptop's authenticator holds %v, want one discoverable passkey", credentials)
		}

		// On the phone the passkey is offered in the email field's autofill
		// (conditional mediation): Chromium's virtual authenticator picks it
		// by itself, as Pia would from the suggestions, and she is in.
		phone := openDevice(t, srv, safariOnIOS, withBaseURL(base))
		phoneKey := addVirtualAuthenticator(t, phone)
		phoneKey.add(t, credentials[0])
		goTo(t, phone.Page, "/login")
		expectDevicesPage(t, phone.Page)
		expectAMR(t, phone, localhostView(srv, base), "hwk")

		// A browser that offers no passkey autofill shows the button instead.
		tablet := openDevice(t, srv, firefoxOnMacOS, withBaseURL(base))
		step(t, "a browser without passkey autofill", tablet.Context.AddInitScript(playwright.Script{Content: playwright.String(noAutofill)}))
		tabletKey := addVirtualAuthenticator(t, tablet)
		tabletKey.add(t, phoneKey.credentials(t)[0]) // synced, with the phone's signature counter
		goTo(t, tablet.Page, "/login")
		passkey := button(tablet.Page, "Sign in with a passkey")
		step(t, "the sign-in page offers a passkey", expect.Locator(passkey).ToBeVisible())
		click(t, passkey, "Sign in with a passkey")
		expectDevicesPage(t, tablet.Page)
		expectAMR(t, tablet, localhostView(srv, base), "hwk")

		// With the password first, the passkey is the second step.
		desk := openDevice(t, srv, chromeOnWindows, withBaseURL(base))
		step(t, "a browser without passkey autofill", desk.Context.AddInitScript(playwright.Script{Content: playwright.String(noAutofill)}))
		deskKey := addVirtualAuthenticator(t, desk)
		deskKey.add(t, tabletKey.credentials(t)[0])
		submitSignIn(t, desk.Page, pia, password)
		step(t, "on the second step", expect.Page(desk.Page).ToHaveURL(regexp.MustCompile(`/login/second-factor`)))
		click(t, button(desk.Page, "Use a passkey"), "Use a passkey")
		expectDevicesPage(t, desk.Page)
		expectAMR(t, desk, localhostView(srv, base), "pwd", "hwk")

		noScript := openDevice(t, srv, chromeOnWindows, withBaseURL(base), withJavaScriptDisabled())
		goTo(t, noScript.Page, "/login")
		expectHeading(t, noScript.Page, "Sign in")
		step(t, "without JavaScript no passkey is offered", expect.Locator(button(noScript.Page, "Sign in with a passkey")).ToBeHidden())
		step(t, "the password form is there", expect.Locator(button(noScript.Page, "Sign in")).ToBeVisible())
	})
}

// noAutofill makes a browser say it offers no passkey autofill (conditional
// mediation), as browsers before it did.
const noAutofill = `if (window.PublicKeyCredential) { PublicKeyCredential.isConditionalMediationAvailable = () => Promise.resolve(false); }`

// startLocalhostServer runs a server of the story's own whose base URL names
// localhost: WebAuthn refuses an IP address as the relying party, so the
// browser must open the portal by a host name. It listens on 127.0.0.1.
func startLocalhostServer(t *testing.T, db database) (*server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("e2e: pick a port: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatalf("e2e: %v", err)
	}
	base := fmt.Sprintf("http://localhost:%d", port)
	srv := db.startServer(t, map[string]string{
		"GATEHOUSE_ADDR":     fmt.Sprintf("127.0.0.1:%d", port),
		"GATEHOUSE_BASE_URL": base,
	})
	return srv, base
}

// localhostView is srv as a browser that opened it on localhost sees it (its
// cookies are localhost's).
func localhostView(srv *server, base string) *server {
	view := *srv.Server
	view.URL = base
	return &server{Server: &view}
}

// virtualAuthenticator is a platform authenticator that Chromium simulates for
// one page (the WebAuthn domain of the DevTools protocol): it keeps
// discoverable credentials, verifies the user and says yes by itself.
type virtualAuthenticator struct {
	cdp playwright.CDPSession
	id  string
}

func addVirtualAuthenticator(t testing.TB, d *device) *virtualAuthenticator {
	t.Helper()
	cdp, err := d.Context.NewCDPSession(d.Page)
	step(t, "open a DevTools session", err)
	_, err = cdp.Send("WebAuthn.enable", map[string]interface{}{})
	step(t, "WebAuthn.enable", err)
	res, err := cdp.Send("WebAuthn.addVirtualAuthenticator", map[string]interface{}{
		"options": map[string]interface{}{
			"protocol": "ctap2", "transport": "internal", "hasResidentKey": true,
			"hasUserVerification": true, "isUserVerified": true, "automaticPresenceSimulation": true,
		},
	})
	step(t, "WebAuthn.addVirtualAuthenticator", err)
	id, _ := res.(map[string]interface{})["authenticatorId"].(string)
	if id == "" {
		t.Fatalf("e2e: WebAuthn.addVirtualAuthenticator answered %v", res)
	}
	return &virtualAuthenticator{cdp: cdp, id: id}
}

// credentials are the passkeys the authenticator keeps, private keys and all.
func (a *virtualAuthenticator) credentials(t testing.TB) []map[string]interface{} {
	t.Helper()
	res, err := a.cdp.Send("WebAuthn.getCredentials", map[string]interface{}{"authenticatorId": a.id})
	step(t, "WebAuthn.getCredentials", err)
	list, _ := res.(map[string]interface{})["credentials"].([]interface{})
	var out []map[string]interface{}
	for _, c := range list {
		if m, ok := c.(map[string]interface{}); ok {
			out = append(out, m)
		}
	}
	return out
}

// add gives the authenticator a passkey another one made: a synced passkey.
func (a *virtualAuthenticator) add(t testing.TB, credential map[string]interface{}) {
	t.Helper()
	_, err := a.cdp.Send("WebAuthn.addCredential", map[string]interface{}{"authenticatorId": a.id, "credential": credential})
	step(t, "WebAuthn.addCredential", err)
}
