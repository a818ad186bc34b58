// Package e2e holds the offline browser stories for gatehouse, driven by
// playwright-go (v0.5200.1, driver = npm playwright-core@1.52.0) against the
// Debian chromium at /usr/bin/chromium. Nothing is ever downloaded at test
// time: `.ci/e2e-setup.sh` (or `make e2e`) prepares the driver and chromium.
//
// Helpers for stories:
//
//	browser := newBrowser(t)              // shared chromium, do NOT Close it
//	alice := newDevice(t, browser, withName("alice"))
//	noJS := newDevice(t, browser, withJavaScriptDisabled())
//	alice.Page.Goto(url)
//	saveArtifactScreenshot(t, alice.Page, "step-1") // e2e/artifacts/<test>-step-1.png
//	saveDocScreenshot(t, alice.Page, "login")     // docs/screenshots/login.png
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
//	CI=true                 missing driver/chromium fails instead of skipping
package e2e
