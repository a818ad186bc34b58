// Package e2e holds the offline browser stories for gatehouse, driven by
// playwright-go (v0.5200.1, driver = npm playwright-core@1.52.0) against the
// Debian chromium at /usr/bin/chromium. Nothing is ever downloaded at test
// time: `.ci/e2e-setup.sh` (or `make e2e`) prepares the driver and chromium.
//
// The stories (one Test function each, run per database as subtests "sqlite"
// and "postgres") start the real binary, which TestMain builds once through
// gatehouse/cmd/gatehouse/harness (the repository's one process harness):
//
//	TestSignUpLandsOnYourDevices           devices_test.go
//	TestRenamedDeviceShowsOnBoth           devices_test.go
//	TestSignOutAnotherDevice               devices_test.go
//	TestSignOutOthersThenEverywhere        devices_test.go
//	TestChangePasswordSignsOutOtherDevices password_test.go
//	TestExpiredAccessIsRenewedSilently     refresh_test.go (own server, 3s access tokens)
//	TestStolenRefreshCookieIsDetected      refresh_test.go (own server, 2s access, 1s grace)
//	TestFormFromAnotherSiteIsRefused       csrf_test.go
//	TestKeyboardOnlySignIn                 access_test.go
//	TestWorksWithoutJavaScript             access_test.go
//	TestForgotPasswordFromSignInPage       mail_test.go (mail to a real SMTP inbox, Mailpit)
//	TestSignUpWithVerificationRequired     mail_test.go
//	TestEmailChangeUndoneFromOldAddress    mail_test.go
//	TestAuthenticatorAppGuardsTheNextSignIn second_factor_test.go
//	TestRecoveryCodeSignsInOnce            second_factor_test.go
//	TestPasskeySignsInAlone                passkey_test.go (Chromium's virtual authenticator, on localhost)
//	TestSecurityPagesAsLeaSeesThem         security_views_test.go
//	TestDevicesRaeCanTellApart             device_details_test.go (own server with a test GeoIP database)
//	TestExactTimesInThePersonsZone         localtime_test.go
//	TestFormsEmptySignUpShowsEveryError    forms_test.go
//	TestFormsErrorSummariesAreAccessible   forms_test.go
//	TestFormsDisplayName                   forms_test.go
//	TestEveryPageStateIsAccessible         accessibility_test.go (axe-core, every page state × 4 variants)
//	TestInfra                              infra_test.go (the browser tooling itself, on the portal)
//
// Servers and accounts (server_test.go):
//
//	eachDatabase(t, func(t *testing.T, db database) { … })  // sqlite, and postgres when
//	                                                         // GATEHOUSE_TEST_POSTGRES is set
//	srv := db.sharedServer(t)                       // default config, shared by stories
//	srv := db.startServer(t, map[string]string{"GATEHOUSE_ACCESS_TTL": "3s"}) // its own
//	email := newAccount(t, srv, "ann")              // createUser via `gatehouse user create`
//
// Each server gets a fresh database (a SQLite file, or a PostgreSQL schema
// reached with search_path) and key dir, listens on a free 127.0.0.1 port,
// and is stopped with SIGTERM. Stories run in parallel (go test -parallel).
//
// What a person does (portal_test.go), finding elements by role and label:
//
//	laptop := openDevice(t, srv, chromeOnWindows) // a device the portal names "Chrome on Windows"
//	signIn(t, laptop.Page, email, password)       // lands on "Your devices"
//	renameDevice(t, laptop.Page, safariOnIOS, "Ann’s phone")
//	signOutDevice(t, laptop.Page, "Ann’s phone")  // the "Sign out Ann’s phone" button
//	expectDevices(t, laptop.Page, chromeOnWindows)
//	expectSignInPage(t, phone.Page)
//	waitForCookieToLapse(t, laptop, srv, "gh_access", ttl, "the access token expires")
//	docScreenshot(t, db, laptop.Page, "devices")  // docs/screenshots/devices.png: SQLite run,
//	                                              // E2E_DOC_SCREENSHOTS=1 (make screenshots) only
//
// Browser helpers:
//
//	browser := newBrowser(t)              // shared chromium, do NOT Close it
//	alice := newDevice(t, browser, withName("alice"))
//	noJS := newDevice(t, browser, withJavaScriptDisabled())
//	alice.Page.Goto(url)
//	saveArtifactScreenshot(t, alice.Page, "step-1") // e2e/artifacts/<test>-step-1.png
//	saveDocScreenshot(t, alice.Page, "login")     // docs/screenshots/login.png, unconditionally
//
// One device = one BrowserContext (own cookie jar, storage, cache) with one
// Page. Devices are closed automatically at the end of the test; if the test
// failed, a screenshot and the HTML of every page of the device are first
// saved under e2e/artifacts/ and their paths logged.
//
// Environment (all optional):
//
//	PLAYWRIGHT_DRIVER_PATH  driver dir containing package/cli.js
//	                        (default $HOME/.cache/gatehouse/playwright-driver-1.52.0)
//	PLAYWRIGHT_NODEJS_PATH  node binary (default: `node` from PATH)
//	E2E_CHROMIUM_PATH       chromium binary (default /usr/bin/chromium)
//	GATEHOUSE_TEST_POSTGRES postgres://… URL: run every story on PostgreSQL too
//	E2E_DOC_SCREENSHOTS=1   rewrite docs/screenshots/*.png (make screenshots);
//	                        without it the suite writes nothing under docs/
//	E2E_AXE_SHOTS=1         TestEveryPageStateIsAccessible saves every state it checks, at
//	                        each width and colour scheme, under e2e/artifacts/ (to look at)
//	CI=true                 missing driver/chromium/PostgreSQL fails instead of skipping
package e2e
