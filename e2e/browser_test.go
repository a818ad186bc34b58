// Browser helpers for the e2e stories; see doc.go for the overview.

package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"

	"gatehouse/cmd/gatehouse/harness"
)

const (
	// driverVersion must match playwrightCliVersion of the pinned playwright-go
	// (run.go in github.com/playwright-community/playwright-go@v0.5200.1).
	driverVersion = "1.52.0"

	defaultChromium = "/usr/bin/chromium"

	// defaultTimeoutMS is the per-context default for actions, navigations and
	// locator waits (Playwright's own default is 30s; everything is local here).
	defaultTimeoutMS = 10_000
)

var chromiumArgs = []string{
	"--no-sandbox",
	"--disable-gpu",
	"--disable-quic",
	"--no-first-run",
	"--disable-background-networking",
	"--disable-component-update",
	"--disable-sync",
	"--disable-dev-shm-usage",
}

// expect holds the web-first assertions (they retry until defaultTimeoutMS):
// expect.Locator(loc).ToHaveText("…"), expect.Page(p).ToHaveURL(…).
var expect = playwright.NewPlaywrightAssertions(defaultTimeoutMS)

// ---------------------------------------------------------------------------
// Shared browser (started lazily by the first test that needs it, stopped in
// TestMain).

// missingError marks a missing prerequisite (driver, node, chromium): the
// test is skipped locally and fails under CI=true. Other start errors fail.
type missingError struct{ msg string }

func (e *missingError) Error() string { return e.msg }

func missing(format string, args ...any) error {
	return &missingError{fmt.Sprintf(format, args...)}
}

var shared struct {
	once    sync.Once
	pw      *playwright.Playwright
	browser playwright.Browser
	err     error
	timing  string
}

// TestMain builds the gatehouse binary once for every story, runs the tests,
// then stops the shared servers and the browser.
func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "gatehouse-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	suite.tmp = tmp
	defer harness.RemoveBuild()
	if _, err := harness.Build(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer stopSharedServers()
	defer stopBrowser()
	return m.Run()
}

// newBrowser returns the chromium shared by all tests of the package, starting
// the playwright driver and chromium on first use. Do not Close it; isolate
// tests with newDevice (a fresh BrowserContext) instead.
//
// When the driver or chromium is missing the test is skipped with a single
// line pointing at .ci/e2e-setup.sh, or fails with that line when CI=true.
func newBrowser(t testing.TB) playwright.Browser {
	t.Helper()
	first := false
	shared.once.Do(func() {
		first = true
		shared.pw, shared.browser, shared.err = startBrowser()
	})
	if shared.err != nil {
		var me *missingError
		if errors.As(shared.err, &me) {
			msg := fmt.Sprintf("e2e: %v; run .ci/e2e-setup.sh (or make e2e)", shared.err)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
		t.Fatalf("e2e: cannot start browser: %v", shared.err)
	}
	if first {
		t.Log(shared.timing)
	}
	return shared.browser
}

func startBrowser() (*playwright.Playwright, playwright.Browser, error) {
	driverDir := os.Getenv("PLAYWRIGHT_DRIVER_PATH")
	if driverDir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, nil, missing("no home directory for the driver cache: %v", err)
		}
		driverDir = filepath.Join(home, ".cache", "gatehouse", "playwright-driver-"+driverVersion)
		os.Setenv("PLAYWRIGHT_DRIVER_PATH", driverDir)
	}
	if os.Getenv("PLAYWRIGHT_NODEJS_PATH") == "" {
		node, err := exec.LookPath("node")
		if err != nil {
			return nil, nil, missing("node not found in PATH")
		}
		os.Setenv("PLAYWRIGHT_NODEJS_PATH", node)
	}
	cliJS := filepath.Join(driverDir, "package", "cli.js")
	if _, err := os.Stat(cliJS); err != nil {
		return nil, nil, missing("playwright driver %s not found (no %s)", driverVersion, cliJS)
	}
	chromium := os.Getenv("E2E_CHROMIUM_PATH")
	if chromium == "" {
		chromium = defaultChromium
	}
	if _, err := exec.LookPath(chromium); err != nil {
		return nil, nil, missing("chromium not found at %s", chromium)
	}

	t0 := time.Now()
	// Run only starts the driver (`node cli.js run-driver`) after checking that
	// `node cli.js --version` reports driverVersion; it never downloads.
	// SkipInstallBrowsers is only read by Install, set here for clarity.
	pw, err := playwright.Run(&playwright.RunOptions{
		DriverDirectory:     driverDir,
		SkipInstallBrowsers: true,
		Verbose:             false,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("playwright driver: %w", err)
	}
	t1 := time.Now()
	browser, err := pw.Chromium.Launch(playwright.BrowserTypeLaunchOptions{
		ExecutablePath: playwright.String(chromium),
		Headless:       playwright.Bool(true),
		Args:           chromiumArgs,
		Timeout:        playwright.Float(30_000),
	})
	if err != nil {
		_ = pw.Stop()
		return nil, nil, fmt.Errorf("launch %s: %w", chromium, err)
	}
	t2 := time.Now()
	shared.timing = fmt.Sprintf("e2e: driver started in %v, chromium %s launched in %v (total %v)",
		t1.Sub(t0).Round(time.Millisecond), browser.Version(),
		t2.Sub(t1).Round(time.Millisecond), t2.Sub(t0).Round(time.Millisecond))
	return pw, browser, nil
}

func stopBrowser() {
	if shared.browser != nil {
		if err := shared.browser.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: closing chromium: %v\n", err)
		}
	}
	if shared.pw != nil {
		if err := shared.pw.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: stopping playwright driver: %v\n", err)
		}
	}
}

// ---------------------------------------------------------------------------
// Devices: one BrowserContext (own cookie jar) + one Page.

type device struct {
	Name    string
	Context playwright.BrowserContext
	Page    playwright.Page
}

type deviceConfig struct {
	name string
	opts playwright.BrowserNewContextOptions
}

type deviceOption func(*deviceConfig)

// withName labels the device in artifact file names (default "device1", ...).
func withName(name string) deviceOption {
	return func(c *deviceConfig) { c.name = name }
}

// withJavaScriptDisabled makes the device a no-JS browser.
func withJavaScriptDisabled() deviceOption {
	return func(c *deviceConfig) { c.opts.JavaScriptEnabled = playwright.Bool(false) }
}

// withUserAgent makes the device send this User-Agent, which the portal turns
// into the device's default name ("Safari on iOS").
func withUserAgent(ua string) deviceOption {
	return func(c *deviceConfig) { c.opts.UserAgent = playwright.String(ua) }
}

// withBaseURL resolves the device's relative URLs (page.Goto("/devices")) against url.
func withBaseURL(url string) deviceOption {
	return func(c *deviceConfig) { c.opts.BaseURL = playwright.String(url) }
}

var deviceSeq struct {
	sync.Mutex
	n map[string]int
}

// newDevice opens a fresh BrowserContext with one Page. It is closed when the
// test ends; if the test failed, a screenshot and the HTML of each of its pages
// are saved under e2e/artifacts/ first and their paths logged.
func newDevice(t testing.TB, browser playwright.Browser, opts ...deviceOption) *device {
	t.Helper()
	cfg := deviceConfig{opts: playwright.BrowserNewContextOptions{
		Viewport:          &playwright.Size{Width: 1280, Height: 800},
		DeviceScaleFactor: playwright.Float(1),
		Locale:            playwright.String("en-US"),
		TimezoneId:        playwright.String("UTC"),
	}}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.name == "" {
		deviceSeq.Lock()
		if deviceSeq.n == nil {
			deviceSeq.n = map[string]int{}
		}
		deviceSeq.n[t.Name()]++
		cfg.name = fmt.Sprintf("device%d", deviceSeq.n[t.Name()])
		deviceSeq.Unlock()
	}

	ctx, err := browser.NewContext(cfg.opts)
	if err != nil {
		t.Fatalf("e2e: new browser context: %v", err)
	}
	ctx.SetDefaultTimeout(defaultTimeoutMS)
	ctx.SetDefaultNavigationTimeout(defaultTimeoutMS)
	d := &device{Name: cfg.name, Context: ctx}
	t.Cleanup(func() {
		if t.Failed() {
			saveFailureArtifacts(t, d)
		}
		if err := ctx.Close(); err != nil {
			t.Logf("e2e: closing context %s: %v", d.Name, err)
		}
	})
	page, err := ctx.NewPage()
	if err != nil {
		t.Fatalf("e2e: new page: %v", err)
	}
	d.Page = page
	return d
}

func saveFailureArtifacts(t testing.TB, d *device) {
	dir := artifactsDir(t)
	if dir == "" {
		return
	}
	for i, p := range d.Context.Pages() {
		base := fmt.Sprintf("%s-%s-failure", fileSafe(t.Name()), d.Name)
		if i > 0 {
			base = fmt.Sprintf("%s-%d", base, i+1)
		}
		png := filepath.Join(dir, base+".png")
		if _, err := p.Screenshot(playwright.PageScreenshotOptions{
			Path: playwright.String(png), FullPage: playwright.Bool(true), Timeout: playwright.Float(5_000),
		}); err != nil {
			t.Logf("e2e: failure screenshot of %s: %v", d.Name, err)
		} else {
			t.Logf("e2e: failure screenshot: %s", png)
		}
		html, err := p.Content()
		if err != nil {
			t.Logf("e2e: failure HTML of %s: %v", d.Name, err)
			continue
		}
		htmlPath := filepath.Join(dir, base+".html")
		if err := os.WriteFile(htmlPath, []byte(fmt.Sprintf("<!-- %s -->\n%s", p.URL(), html)), 0o644); err != nil {
			t.Logf("e2e: failure HTML of %s: %v", d.Name, err)
		} else {
			t.Logf("e2e: failure HTML (%s): %s", p.URL(), htmlPath)
		}
	}
}

// ---------------------------------------------------------------------------
// Screenshots.

// saveArtifactScreenshot saves a full-page screenshot to
// e2e/artifacts/<TestName>-<name>.png (gitignored) and returns the path.
func saveArtifactScreenshot(t testing.TB, page playwright.Page, name string) string {
	t.Helper()
	dir := artifactsDir(t)
	if dir == "" {
		t.FailNow()
	}
	path := filepath.Join(dir, fileSafe(t.Name())+"-"+fileSafe(name)+".png")
	screenshot(t, page, path)
	return path
}

// saveDocScreenshot saves a full-page screenshot to docs/screenshots/NAME.png
// (relative to the repository root, committed) and returns the path.
func saveDocScreenshot(t testing.TB, page playwright.Page, name string) string {
	t.Helper()
	name = strings.TrimSuffix(name, ".png")
	if name == "" || name != fileSafe(name) {
		t.Fatalf("e2e: doc screenshot name %q: use letters, digits, '-', '_' and '.'", name)
	}
	dir := filepath.Join(repoRoot(t), "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("e2e: %v", err)
	}
	path := filepath.Join(dir, name+".png")
	screenshot(t, page, path)
	return path
}

func screenshot(t testing.TB, page playwright.Page, path string) {
	t.Helper()
	if _, err := page.Screenshot(playwright.PageScreenshotOptions{
		Path:       playwright.String(path),
		FullPage:   playwright.Bool(true),
		Animations: playwright.ScreenshotAnimationsDisabled,
		Caret:      playwright.ScreenshotCaretHide,
	}); err != nil {
		t.Fatalf("e2e: screenshot %s: %v", path, err)
	}
}

// ---------------------------------------------------------------------------
// Paths.

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error
)

// repoRoot is the directory holding go.mod (go test runs in e2e/).
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := findRepoRoot()
	if err != nil {
		t.Fatalf("e2e: repo root: %v", err)
	}
	return dir
}

func findRepoRoot() (string, error) {
	rootOnce.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			rootErr = err
			return
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				rootDir = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				rootErr = errors.New("go.mod not found above the working directory")
				return
			}
			dir = parent
		}
	})
	return rootDir, rootErr
}

// artifactsDir returns e2e/artifacts, creating it; "" (after logging) on error.
func artifactsDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "e2e", "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Errorf("e2e: artifacts dir: %v", err)
		return ""
	}
	return dir
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func fileSafe(s string) string {
	return strings.Trim(unsafeChars.ReplaceAllString(s, "_"), "_")
}
