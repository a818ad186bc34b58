package handlers_test

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"gatehouse/models/testdb"
)

// The household the page tests (and the scenarios) run against, and what they expect of a page.

const (
	firefoxMac    = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:121.0) Gecko/20100101 Firefox/121.0"
	chromeAndroid = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36"
)

// userAgent sends every request of one client with a browser's User-Agent.
type userAgent struct {
	ua   string
	next http.RoundTripper
}

func (u userAgent) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", u.ua)
	return u.next.RoundTrip(r)
}

// browser is a client that says it is the browser ua.
func (ts *testServer) browser(t *testing.T, ua string) *client {
	c := ts.newClient(t)
	c.http.Transport = userAgent{ua: ua, next: http.DefaultTransport}
	return c
}

// household is Ann signed in on two browsers: a laptop (Firefox on macOS) and a phone (Chrome on
// Android).
type household struct {
	ts                  *testServer
	laptop, phone       *client
	laptopSID, phoneSID string
}

func newHousehold(t *testing.T, db *testdb.DB, opts ...serverOption) *household {
	t.Helper()
	ts := newTestServer(t, db, opts...)
	ts.createUser(t, "ann@example.com")
	h := &household{ts: ts, laptop: ts.browser(t, firefoxMac), phone: ts.browser(t, chromeAndroid)}
	h.laptop.pageSignIn("ann@example.com")
	h.phone.pageSignIn("ann@example.com")
	h.laptopSID, h.phoneSID = ts.sessionOf(t, h.laptop), ts.sessionOf(t, h.phone)
	return h
}

// use points the clients' failures at the running subtest.
func (h *household) use(t *testing.T) {
	h.laptop.t, h.phone.t = t, t
}

// queryString runs a one-column query and returns the first row, or "" when there is none.
func (ts *testServer) queryString(t *testing.T, sql string, args ...any) string {
	t.Helper()
	var out []string
	if err := ts.db.Store.DB().Raw(sql, args...).Scan(&out).Error; err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	if len(out) == 0 {
		return ""
	}
	return out[0]
}

// sessionOf is the live device session of the client's browser, found by its device cookie.
func (ts *testServer) sessionOf(t *testing.T, c *client) string {
	t.Helper()
	device := c.cookieValue("gh_device")
	id := ts.queryString(t, "SELECT id FROM device_sessions WHERE device_id = ? AND revoked_at IS NULL", device)
	if device == "" || id == "" {
		t.Fatalf("the client has no live device session (device cookie %q)", device)
	}
	return id
}

func (ts *testServer) deviceName(t *testing.T, sid string) string {
	t.Helper()
	return ts.queryString(t, "SELECT device_name FROM device_sessions WHERE id = ?", sid)
}

// dbState sums up every row a page could change, to show that a refused request changed none.
func (ts *testServer) dbState(t *testing.T) string {
	t.Helper()
	var parts []string
	for _, q := range []string{
		"SELECT COUNT(*) FROM users",
		"SELECT COUNT(*) FROM users WHERE token_version <> 1",
		"SELECT COUNT(*) FROM device_sessions",
		"SELECT COUNT(*) FROM device_sessions WHERE revoked_at IS NULL",
		"SELECT COUNT(*) FROM device_sessions WHERE user_named",
		"SELECT COUNT(*) FROM refresh_tokens",
		// Failed password checks are recorded on purpose (see TestPasswordFailuresAreRecorded).
		"SELECT COUNT(*) FROM security_events WHERE kind NOT IN ('sign_in_failed', 'password_check_failed')",
	} {
		parts = append(parts, strconv.FormatInt(ts.db.Count(t, q), 10))
	}
	return strings.Join(parts, ",") + ",hash=" + ts.queryString(t, "SELECT password_hash FROM users WHERE email = ?", "ann@example.com")
}

// postRaw posts a form exactly as given: no CSRF token is added.
func (c *client) postRaw(path string, values url.Values, header map[string]string) *response {
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for k, v := range header {
		h[k] = v
	}
	return c.do(http.MethodPost, path, strings.NewReader(values.Encode()), h)
}

func (c *client) deleteCookie(name string) {
	u, _ := url.Parse(c.ts.URL)
	c.http.Jar.SetCookies(u, []*http.Cookie{{Name: name, Path: "/", MaxAge: -1}})
}

func expectRedirect(t *testing.T, res *response, location string) {
	t.Helper()
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != location {
		t.Fatalf("got %d to %q, want 303 to %q; body: %.300s", res.StatusCode, res.Header.Get("Location"), location, res.body)
	}
}

// expectPage checks the status, that the answer is an HTML page, and its main heading.
func expectPage(t *testing.T, res *response, status int, heading string) *goquery.Document {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("status %d, want %d; Location %q; body: %.500s", res.StatusCode, status, res.Header.Get("Location"), res.body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Fatalf("Content-Type %q, want an HTML page", ct)
	}
	doc := res.Doc(t)
	if h := strings.TrimSpace(doc.Find("main h1").First().Text()); h != heading {
		t.Fatalf("heading %q, want %q", h, heading)
	}
	return doc
}

func expectSignedIn(t *testing.T, c *client) *goquery.Document {
	t.Helper()
	return expectPage(t, c.get("/devices"), http.StatusOK, "Your devices")
}

// expectSignedOut checks that the client is sent to sign in, whatever reason the page gives.
func expectSignedOut(t *testing.T, c *client) {
	t.Helper()
	res := c.get("/devices")
	if !signInRedirect(res) {
		t.Fatalf("/devices answers %d to %q, want 303 to /login?next=%%2Fdevices", res.StatusCode, res.Header.Get("Location"))
	}
}

// signInRedirect tells whether res sends the browser to sign in and back to /devices.
func signInRedirect(res *response) bool {
	to, err := url.Parse(res.Header.Get("Location"))
	return err == nil && res.StatusCode == http.StatusSeeOther && to.Path == "/login" && to.Query().Get("next") == "/devices"
}

// fieldError is the error shown for the one input sel finds in scope: the element right after
// the input, named in its aria-describedby, with aria-invalid="true" on the input. It is "" when
// the input has no error, and fails the test when the markup is half there.
func fieldError(t *testing.T, scope *goquery.Selection, sel string) string {
	t.Helper()
	in := scope.Find(sel)
	if in.Length() != 1 {
		t.Fatalf("want one %s, found %d", sel, in.Length())
	}
	invalid, _ := in.Attr("aria-invalid")
	described, _ := in.Attr("aria-describedby")
	next := in.Next()
	id, _ := next.Attr("id")
	if next.Length() == 0 || id == "" || !slices.Contains(strings.Fields(described), id) {
		if invalid == "true" {
			t.Fatalf("%s is aria-invalid but no error follows it", sel)
		}
		return ""
	}
	if invalid != "true" {
		t.Fatalf("%s has an error after it but no aria-invalid=\"true\"", sel)
	}
	return strings.TrimSpace(next.Text())
}

// deviceRow is the <li> of the devices list whose forms act on sid.
func deviceRow(doc *goquery.Document, sid string) *goquery.Selection {
	return doc.Find(`ul[aria-label="Devices"] > li`).FilterFunction(func(_ int, li *goquery.Selection) bool {
		return li.Find(`form[action="/devices/`+sid+`/rename"]`).Length() == 1
	})
}

func text(s *goquery.Selection) string { return strings.TrimSpace(s.Text()) }
