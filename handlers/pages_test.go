package handlers_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"gatehouse/handlers"
	"gatehouse/models/testdb"
	"gatehouse/services/ratelimit"
)

// The pages, driven the way a person's browsers drive them: real app, real database, one cookie
// jar per browser, forms posted with the CSRF token of the page they came from.

const (
	firefoxMac    = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:121.0) Gecko/20100101 Firefox/121.0"
	chromeAndroid = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36"
	newPassword   = "a brand new passphrase"
	evilScript    = `<script>alert(1)</script>`
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

func (ts *testServer) liveSessions(t *testing.T) int64 {
	t.Helper()
	return ts.db.Count(t, "SELECT COUNT(*) FROM device_sessions WHERE revoked_at IS NULL")
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

func expectSignedOut(t *testing.T, c *client) {
	t.Helper()
	expectRedirect(t, c.get("/devices"), "/login?next=%2Fdevices")
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

func TestPageHome(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		h := newHousehold(t, db)
		cases := []struct {
			name   string
			client func(t *testing.T) *client
			want   string
		}{
			{"signed out", func(t *testing.T) *client { return h.ts.newClient(t) }, "/login"},
			{"signed in", func(t *testing.T) *client { return h.laptop }, "/devices"},
			{"access cookie gone, refresh cookie good", func(t *testing.T) *client {
				h.phone.deleteCookie("gh_access")
				return h.phone
			}, "/devices"},
			{"garbage cookies", func(t *testing.T) *client {
				c := h.ts.newClient(t)
				c.setCookie("gh_access", "garbage")
				c.setCookie("gh_refresh", "garbage")
				return c
			}, "/login"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				h.use(t)
				expectRedirect(t, tc.client(t).get("/"), tc.want)
			})
		}
	})
}

func TestPageDevicesList(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		h := newHousehold(t, db)
		h.laptop.pageSignIn("ann@example.com") // again on the same browser: still one row for it
		h.laptopSID = h.ts.sessionOf(t, h.laptop)
		for _, who := range []struct {
			name             string
			c                *client
			current, another string
		}{
			{"laptop", h.laptop, h.laptopSID, h.phoneSID},
			{"phone", h.phone, h.phoneSID, h.laptopSID},
		} {
			t.Run(who.name, func(t *testing.T) {
				h.use(t)
				doc := expectSignedIn(t, who.c)
				rows := doc.Find(`ul[aria-label="Devices"] > li`)
				if rows.Length() != 2 {
					t.Fatalf("%d device rows, want 2", rows.Length())
				}
				if n := doc.Find(`ul[aria-label="Devices"] :contains("This device")`).Length(); n == 0 {
					t.Fatal("no row is marked \"This device\"")
				}
				for sid, want := range map[string]bool{who.current: true, who.another: false} {
					row := deviceRow(doc, sid)
					if row.Length() != 1 {
						t.Fatalf("no row for session %s", sid)
					}
					if got := strings.Contains(row.Text(), "This device"); got != want {
						t.Fatalf("row %q marked \"This device\": %v, want %v", text(row.Find("h2")), got, want)
					}
				}
				laptop, phone := deviceRow(doc, h.laptopSID), deviceRow(doc, h.phoneSID)
				if n := text(laptop.Find("h2")); n != "Firefox on macOS" {
					t.Fatalf("laptop row named %q", n)
				}
				if n := text(phone.Find("h2")); n != "Chrome on Android" {
					t.Fatalf("phone row named %q", n)
				}
				if !strings.Contains(laptop.Text(), "Firefox 121 on macOS") || !strings.Contains(laptop.Text(), "127.0.0.1") {
					t.Fatalf("laptop row lacks browser, OS or IP: %q", strings.Join(strings.Fields(laptop.Text()), " "))
				}
				if n := laptop.Find("time[datetime]").Length(); n != 2 {
					t.Fatalf("laptop row has %d times, want signed in and last active", n)
				}
				if l, _ := laptop.Find(`form[action$="/signout"] button`).Attr("aria-label"); l != "Sign out Firefox on macOS" {
					t.Fatalf("sign-out button named %q", l)
				}
				if email := text(doc.Find("header .email")); email != "ann@example.com" {
					t.Fatalf("header shows %q", email)
				}
				if n := doc.Find(`ul[aria-label="Security activity"] li:contains("New sign-in")`).Length(); n < 2 {
					t.Fatalf("security activity lists %d sign-ins", n)
				}
			})
		}
	})
}

func TestPageRename(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		h := newHousehold(t, db)
		h.ts.createUser(t, "bob@example.com")
		bob := h.ts.browser(t, firefoxMac)
		bob.pageSignIn("bob@example.com")
		bobSID := h.ts.sessionOf(t, bob)
		gone := h.ts.browser(t, firefoxMac)
		gone.pageSignIn("ann@example.com")
		goneSID := h.ts.sessionOf(t, gone)
		gone.get("/devices")
		expectRedirect(t, gone.postForm("/logout", nil), "/login")

		const badLength = "Use 1 to 64 characters."
		cases := []struct {
			name      string
			sid       string
			value     string
			status    int    // 303 on success
			stored    string // the name afterwards; "" when it must not change
			wantError string // for 400: the error next to that row's field
		}{
			{"new name", h.laptopSID, "Work laptop", 303, "Work laptop", ""},
			{"another of my devices", h.phoneSID, "Ann's phone", 303, "Ann's phone", ""},
			{"trimmed", h.phoneSID, "  Pixel  ", 303, "Pixel", ""},
			{"64 characters", h.phoneSID, strings.Repeat("p", 64), 303, strings.Repeat("p", 64), ""},
			{"64 letters of two bytes", h.phoneSID, strings.Repeat("é", 64), 303, strings.Repeat("é", 64), ""},
			{"HTML is a name like any other", h.laptopSID, evilScript, 303, evilScript, ""},
			{"empty", h.phoneSID, "", 400, "", badLength},
			{"only spaces", h.phoneSID, "   ", 400, "", badLength},
			{"65 characters", h.phoneSID, strings.Repeat("x", 65), 400, "", badLength},
			{"65 letters of two bytes", h.laptopSID, strings.Repeat("é", 65), 400, "", badLength},
			{"control character", h.phoneSID, "tab\x01here", 400, "", "Use 1 to 64 characters without control or text-direction characters."},
			{"unknown session", "no-such-session", "Mine now", 404, "", ""},
			{"another user's session", bobSID, "Mine now", 404, "", ""},
			{"a signed-out session", goneSID, "Back again", 404, "", ""},
			{"bad name on another user's session", bobSID, "", 404, "", ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				h.use(t)
				h.laptop.get("/devices")
				before, state := h.ts.deviceName(t, tc.sid), h.ts.dbState(t)
				bobBefore := h.ts.deviceName(t, bobSID)
				res := h.laptop.postForm("/devices/"+tc.sid+"/rename", url.Values{"name": {tc.value}})
				switch tc.status {
				case 303:
					expectRedirect(t, res, "/devices?done=renamed")
					if got := h.ts.deviceName(t, tc.sid); got != tc.stored {
						t.Fatalf("stored name %q, want %q", got, tc.stored)
					}
					doc := expectPage(t, h.laptop.get("/devices?done=renamed"), 200, "Your devices")
					row := deviceRow(doc, tc.sid)
					if got := text(row.Find("h2")); got != tc.stored {
						t.Fatalf("the row shows %q, want %q", got, tc.stored)
					}
					if l, _ := row.Find(`form[action$="/signout"] button`).Attr("aria-label"); l != "Sign out "+tc.stored {
						t.Fatalf("sign-out button named %q", l)
					}
					if doc.Find("script").Length() != 0 {
						t.Fatal("a device name became a <script> element")
					}
					if text(doc.Find(`[role="status"]`)) != "Device renamed." {
						t.Fatalf("flash %q", text(doc.Find(`[role="status"]`)))
					}
					return
				case 400:
					doc := expectPage(t, res, 400, "Your devices")
					row := deviceRow(doc, tc.sid)
					if got := fieldError(t, row, `input[name="name"]`); got != tc.wantError {
						t.Fatalf("error next to the field %q, want %q", got, tc.wantError)
					}
					if v, _ := row.Find(`input[name="name"]`).Attr("value"); v != tc.value {
						t.Fatalf("the field shows %q, want the rejected input %q", v, tc.value)
					}
					if text(row.Find("h2")) != before {
						t.Fatalf("the row's heading %q, want the unchanged name %q", text(row.Find("h2")), before)
					}
					doc.Find(`ul[aria-label="Devices"] > li`).Each(func(_ int, other *goquery.Selection) {
						if other.Find(`form[action="/devices/`+tc.sid+`/rename"]`).Length() == 0 && fieldError(t, other, `input[name="name"]`) != "" {
							t.Fatal("the error is shown on another row too")
						}
					})
				case 404:
					expectPage(t, res, 404, "Page not found")
				}
				if after := h.ts.deviceName(t, tc.sid); after != before {
					t.Fatalf("the name changed from %q to %q", before, after)
				}
				if h.ts.deviceName(t, bobSID) != bobBefore || h.ts.dbState(t) != state {
					t.Fatal("a refused rename changed rows")
				}
			})
		}
	})
}

func TestPageSignOutDevice(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		h := newHousehold(t, db)
		h.ts.createUser(t, "bob@example.com")
		bob := h.ts.browser(t, firefoxMac)
		bob.pageSignIn("bob@example.com")
		bobSID := h.ts.sessionOf(t, bob)

		t.Run("the other device", func(t *testing.T) {
			h.use(t)
			h.laptop.get("/devices")
			expectRedirect(t, h.laptop.postForm("/devices/"+h.phoneSID+"/signout", nil), "/devices?done=signed-out")
			if n := db.Count(t, "SELECT COUNT(*) FROM device_sessions WHERE id = ? AND revoked_at IS NOT NULL", h.phoneSID); n != 1 {
				t.Fatal("the phone's session is not revoked")
			}
			expectSignedOut(t, h.phone)
			expectRedirect(t, h.phone.get("/"), "/login")
			doc := expectSignedIn(t, h.laptop)
			if n := doc.Find(`ul[aria-label="Devices"] > li`).Length(); n != 1 {
				t.Fatalf("%d rows after signing the phone out", n)
			}
			if deviceRow(doc, h.phoneSID).Length() != 0 {
				t.Fatal("the signed-out phone is still listed")
			}
		})
		for _, tc := range []struct{ name, sid string }{
			{"already signed out", h.phoneSID},
			{"unknown session", "no-such-session"},
			{"another user's session", bobSID},
		} {
			t.Run(tc.name, func(t *testing.T) {
				h.use(t)
				h.laptop.get("/devices")
				state := h.ts.dbState(t)
				expectPage(t, h.laptop.postForm("/devices/"+tc.sid+"/signout", nil), 404, "Page not found")
				if h.ts.dbState(t) != state {
					t.Fatal("a 404 changed rows")
				}
			})
		}
		bob.t = t
		expectSignedIn(t, bob)

		t.Run("this device", func(t *testing.T) {
			h.use(t)
			h.laptop.get("/devices")
			expectRedirect(t, h.laptop.postForm("/devices/"+h.laptopSID+"/signout", nil), "/login")
			if h.laptop.cookieValue("gh_refresh") != "" || h.laptop.cookieValue("gh_access") != "" {
				t.Fatal("signing this device out must clear its cookies")
			}
			expectSignedOut(t, h.laptop)
		})
	})
}

func TestPageSignOutOthers(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		h := newHousehold(t, db)
		h.laptop.get("/devices")
		expectRedirect(t, h.laptop.postForm("/devices/signout-others", nil), "/devices?done=others")
		expectSignedOut(t, h.phone)
		res := h.laptop.get("/devices?done=others")
		doc := expectPage(t, res, 200, "Your devices")
		if n := doc.Find(`ul[aria-label="Devices"] > li`).Length(); n != 1 || deviceRow(doc, h.laptopSID).Length() != 1 {
			t.Fatalf("%d rows, want only this device", n)
		}
		if got := text(doc.Find(`[role="status"]`)); got != "All other devices were signed out." {
			t.Fatalf("flash %q", got)
		}
		if n := h.ts.liveSessions(t); n != 1 {
			t.Fatalf("%d live sessions", n)
		}
	})
}

func TestPageSignOutEverywhere(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		h := newHousehold(t, db)
		h.ts.createUser(t, "bob@example.com")
		bob := h.ts.browser(t, firefoxMac)
		bob.pageSignIn("bob@example.com")

		doc := expectPage(t, h.laptop.get("/devices/signout-everywhere"), 200, "Sign out everywhere?")
		form := doc.Find(`main form[method="post"][action="/devices/signout-everywhere"]`)
		if form.Length() != 1 || text(form.Find(`button[type="submit"]`)) != "Yes, sign out everywhere" {
			t.Fatal("the confirmation page lacks its form and button")
		}
		if href, _ := doc.Find(`main a:contains("Cancel")`).Attr("href"); href != "/devices" {
			t.Fatalf("Cancel goes to %q", href)
		}
		if n := h.ts.liveSessions(t); n != 3 {
			t.Fatalf("showing the confirmation changed sessions: %d live", n)
		}

		expectRedirect(t, h.laptop.postForm("/devices/signout-everywhere", nil), "/login")
		if h.laptop.cookieValue("gh_refresh") != "" || h.laptop.cookieValue("gh_access") != "" {
			t.Fatal("this device's cookies must be cleared")
		}
		expectSignedOut(t, h.laptop)
		expectSignedOut(t, h.phone)
		if n := db.Count(t, "SELECT COUNT(*) FROM users WHERE email = ? AND token_version = 2", "ann@example.com"); n != 1 {
			t.Fatal("token_version must be bumped")
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM device_sessions d JOIN users u ON u.id = d.user_id WHERE u.email = ? AND d.revoked_at IS NULL", "ann@example.com"); n != 0 {
			t.Fatalf("%d of Ann's sessions are still live", n)
		}
		expectSignedIn(t, bob)
	})
}

func TestPageChangePassword(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		h := newHousehold(t, db)
		failures := []struct {
			name, current, next, confirm string
			field, message               string
		}{
			{"wrong current password", "not my password", newPassword, newPassword, "current_password", "That is not your current password."},
			{"confirmation differs", testPassword, newPassword, newPassword + "!", "new_password_confirm", "The passwords do not match."},
			{"too short", testPassword, "short", "short", "new_password", "Use at least 10 characters."},
			{"too long", testPassword, strings.Repeat("p", 257), strings.Repeat("p", 257), "new_password", "Use at most 256 characters."},
		}
		for _, tc := range failures {
			t.Run(tc.name, func(t *testing.T) {
				h.use(t)
				expectPage(t, h.laptop.get("/account"), 200, "Account")
				state := h.ts.dbState(t)
				res := h.laptop.postForm("/account/password", url.Values{
					"current_password": {tc.current}, "new_password": {tc.next}, "new_password_confirm": {tc.confirm},
				})
				doc := expectPage(t, res, 400, "Account")
				for _, f := range []string{"current_password", "new_password", "new_password_confirm"} {
					in := `input[name="` + f + `"]`
					want := ""
					if f == tc.field {
						want = tc.message
					}
					if got := fieldError(t, doc.Selection, in); got != want {
						t.Fatalf("error next to %s: %q, want %q", f, got, want)
					}
					if _, has := doc.Find(in).Attr("value"); has {
						t.Fatalf("%s is sent back with a value", f)
					}
				}
				if h.ts.dbState(t) != state {
					t.Fatal("a refused password change changed rows")
				}
				expectSignedIn(t, h.phone)
			})
		}
		t.Run("success", func(t *testing.T) {
			h.use(t)
			h.laptop.get("/account")
			res := h.laptop.postForm("/account/password", url.Values{
				"current_password": {testPassword}, "new_password": {newPassword}, "new_password_confirm": {newPassword},
			})
			expectRedirect(t, res, "/account?done=password")
			doc := expectPage(t, h.laptop.get("/account?done=password"), 200, "Account")
			if got := text(doc.Find(`[role="status"]`)); got != "Password changed. Your other devices were signed out." {
				t.Fatalf("flash %q", got)
			}
			expectSignedOut(t, h.phone)
			expectSignedIn(t, h.laptop)

			h.ts.clock.Advance(11 * time.Minute) // past the access lifetime: the refresh cookie still works
			expectSignedIn(t, h.laptop)

			old := h.ts.newClient(t)
			old.get("/login")
			if res := old.postForm("/login", url.Values{"email": {"ann@example.com"}, "password": {testPassword}}); res.StatusCode != 401 {
				t.Fatalf("the old password still signs in: %d", res.StatusCode)
			}
			fresh := h.ts.newClient(t)
			fresh.get("/login")
			expectRedirect(t, fresh.postForm("/login", url.Values{"email": {"ann@example.com"}, "password": {newPassword}}), "/devices")
		})
	})
}

func TestPageCSRF(t *testing.T) {
	forms := []struct {
		name   string
		path   func(h *household) string
		values url.Values
	}{
		{"sign out another device", func(h *household) string { return "/devices/" + h.phoneSID + "/signout" }, url.Values{}},
		{"rename", func(h *household) string { return "/devices/" + h.laptopSID + "/rename" }, url.Values{"name": {"Pwned"}}},
		{"sign out others", func(*household) string { return "/devices/signout-others" }, url.Values{}},
		{"sign out everywhere", func(*household) string { return "/devices/signout-everywhere" }, url.Values{}},
		{"change password", func(*household) string { return "/account/password" }, url.Values{
			"current_password": {testPassword}, "new_password": {newPassword}, "new_password_confirm": {newPassword}}},
		{"sign out", func(*household) string { return "/logout" }, url.Values{}},
		{"sign in", func(*household) string { return "/login" }, url.Values{"email": {"ann@example.com"}, "password": {testPassword}}},
		{"sign up", func(*household) string { return "/signup" }, url.Values{
			"email": {"mallory@example.com"}, "password": {testPassword}, "password_confirm": {testPassword}}},
	}
	tokens := []struct {
		name   string
		token  func(h *household) string
		header map[string]string
		before func(h *household)
	}{
		{"no token", func(*household) string { return "" }, nil, nil},
		{"wrong token", func(*household) string { return strings.Repeat("A", 43) }, nil, nil},
		{"another browser's token", func(h *household) string { return h.phone.csrf }, nil, nil},
		{"token without its cookie", func(h *household) string { return h.laptop.csrf }, nil, func(h *household) { h.laptop.deleteCookie("gh_csrf") }},
		{"foreign Origin", func(h *household) string { return h.laptop.csrf }, map[string]string{"Origin": "http://evil.test"}, nil},
		{"null Origin", func(h *household) string { return h.laptop.csrf }, map[string]string{"Origin": "null"}, nil},
	}
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		h := newHousehold(t, db)
		h.phone.get("/devices")
		for _, f := range forms {
			for _, tok := range tokens {
				t.Run(f.name+"/"+tok.name, func(t *testing.T) {
					h.use(t)
					h.laptop.get("/devices")
					if h.laptop.csrf == "" || h.phone.csrf == "" || h.laptop.csrf == h.phone.csrf {
						t.Fatal("each browser needs its own CSRF token")
					}
					if tok.before != nil {
						tok.before(h)
					}
					values := url.Values{}
					for k, v := range f.values {
						values[k] = v
					}
					if v := tok.token(h); v != "" {
						values.Set("_csrf", v)
					}
					state := h.ts.dbState(t)
					res := h.laptop.postRaw(f.path(h), values, tok.header)
					expectPage(t, res, 403, "Not allowed")
					if res.cookie("gh_refresh") != nil || res.cookie("gh_access") != nil {
						t.Fatal("a refused form must not touch the session cookies")
					}
					if got := h.ts.dbState(t); got != state {
						t.Fatalf("a refused form changed rows: %s, was %s", got, state)
					}
					expectSignedIn(t, h.laptop)
					expectSignedIn(t, h.phone)
				})
			}
		}
		t.Run("the portal's own Origin with a good token is accepted", func(t *testing.T) {
			h.use(t)
			h.laptop.get("/devices")
			res := h.laptop.postRaw("/devices/"+h.laptopSID+"/rename", url.Values{"name": {"Mine"}, "_csrf": {h.laptop.csrf}}, map[string]string{"Origin": h.ts.URL})
			expectRedirect(t, res, "/devices?done=renamed")
		})
	})
}

func TestPageSilentRefresh(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newTestServer(t, db)
		ts.createUser(t, "ann@example.com")
		expire := []struct {
			name   string
			expire func(c *client)
		}{
			{"access cookie gone", func(c *client) { c.deleteCookie("gh_access") }},
			{"access token past its lifetime", func(*client) { ts.clock.Advance(11 * time.Minute) }},
			{"access cookie tampered with", func(c *client) { c.setCookie("gh_access", c.cookieValue("gh_access")+"x") }},
		}
		for _, tc := range expire {
			t.Run(tc.name, func(t *testing.T) {
				c := ts.browser(t, firefoxMac)
				c.pageSignIn("ann@example.com")
				sid := ts.sessionOf(t, c)
				oldRefresh, oldAccess := c.cookieValue("gh_refresh"), c.cookieValue("gh_access")
				tc.expire(c)

				res := c.get("/devices")
				doc := expectPage(t, res, 200, "Your devices")
				if doc.Find(`form[action="/login"], input[type="password"]`).Length() != 0 {
					t.Fatal("the page prompts for a sign-in")
				}
				if deviceRow(doc, sid).Find(`:contains("This device")`).Length() == 0 {
					t.Fatal("the same device session goes on")
				}
				rotated := res.cookie("gh_refresh")
				if rotated == nil || rotated.Value == "" || rotated.Value == oldRefresh || !rotated.HttpOnly || rotated.MaxAge != 336*3600 {
					t.Fatalf("the refresh cookie must be rotated: %+v", rotated)
				}
				if a := c.cookieValue("gh_access"); a == "" || a == oldAccess {
					t.Fatal("a new access cookie must be set")
				}
				again := c.get("/devices")
				expectPage(t, again, 200, "Your devices")
				if again.cookie("gh_refresh") != nil {
					t.Fatal("a good access cookie must not rotate the refresh token again")
				}
				c.get("/devices")
				expectRedirect(t, c.postForm("/devices/"+sid+"/rename", url.Values{"name": {"Still me"}}), "/devices?done=renamed")
			})
		}
		t.Run("form posted after the access token expired", func(t *testing.T) {
			c := ts.browser(t, firefoxMac)
			c.pageSignIn("ann@example.com")
			sid := ts.sessionOf(t, c)
			c.get("/devices")
			ts.clock.Advance(11 * time.Minute)
			res := c.postForm("/devices/"+sid+"/rename", url.Values{"name": {"Renamed late"}})
			expectRedirect(t, res, "/devices?done=renamed")
			if ts.deviceName(t, sid) != "Renamed late" || res.cookie("gh_refresh") == nil {
				t.Fatal("the form must go on after a silent refresh")
			}
		})
		t.Run("refresh cookie past its idle lifetime", func(t *testing.T) {
			c := ts.browser(t, firefoxMac)
			c.pageSignIn("ann@example.com")
			ts.clock.Advance(337 * time.Hour)
			expectSignedOut(t, c)
			if c.cookieValue("gh_refresh") != "" {
				t.Fatal("a dead refresh cookie must be cleared")
			}
		})
	})
}

func TestPageLogin(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newTestServer(t, db)
		ts.createUser(t, "ann@example.com")
		ts.createUser(t, "gone@example.com")
		if err := ts.svc.DisableUser(context.Background(), "gone@example.com"); err != nil {
			t.Fatal(err)
		}

		t.Run("success", func(t *testing.T) {
			c := ts.browser(t, firefoxMac)
			doc := expectPage(t, c.get("/login"), 200, "Sign in")
			if doc.Find(`header nav, form[action="/logout"]`).Length() != 0 {
				t.Fatal("a signed-out page shows the signed-in header")
			}
			res := c.postForm("/login", url.Values{"email": {"Ann@Example.com"}, "password": {testPassword}})
			expectRedirect(t, res, "/devices")
			refresh, access := res.cookie("gh_refresh"), res.cookie("gh_access")
			if refresh == nil || !refresh.HttpOnly || refresh.SameSite != http.SameSiteLaxMode || refresh.Secure || refresh.MaxAge != 336*3600 || refresh.Path != "/" {
				t.Fatalf("refresh cookie attributes: %+v", refresh)
			}
			if access == nil || !access.HttpOnly || access.MaxAge != 600 {
				t.Fatalf("access cookie attributes: %+v", access)
			}
			expectSignedIn(t, c)
			expectRedirect(t, c.get("/login"), "/devices")
		})

		var message string
		failures := []struct{ name, email, password string }{
			{"wrong password", "ann@example.com", "not the password"},
			{"unknown email", "nobody@example.com", testPassword},
			{"disabled account", "gone@example.com", testPassword},
			{"not an email", "ann", testPassword},
			{"empty password", "ann@example.com", ""},
			{"empty form", "", ""},
			{"HTML in the email", `"><script>alert(1)</script>@example.com`, "whatever it is"},
		}
		for _, tc := range failures {
			t.Run(tc.name, func(t *testing.T) {
				c := ts.newClient(t)
				c.get("/login?next=%2Faccount")
				state := ts.dbState(t)
				res := c.postForm("/login", url.Values{"email": {tc.email}, "password": {tc.password}, "next": {"/account"}})
				doc := expectPage(t, res, 401, "Sign in")
				alerts := doc.Find(`[role="alert"]`)
				if alerts.Length() != 1 || text(alerts) == "" {
					t.Fatalf("want one alert, found %d", alerts.Length())
				}
				if message == "" {
					message = text(alerts)
				}
				if text(alerts) != message {
					t.Fatalf("message %q differs from %q: it must not tell the cases apart", text(alerts), message)
				}
				if n := doc.Find(`[aria-invalid="true"]`).Length(); n != 0 {
					t.Fatalf("%d fields marked invalid: the failure must stay generic", n)
				}
				form := doc.Find(`form[action="/login"]`)
				if v, _ := form.Find(`input[name="email"]`).Attr("value"); v != tc.email {
					t.Fatalf("email field %q, want %q kept", v, tc.email)
				}
				if _, has := form.Find(`input[name="password"]`).Attr("value"); has {
					t.Fatal("the password field must come back empty, with no value attribute")
				}
				if v, _ := form.Find(`input[name="next"]`).Attr("value"); v != "/account" {
					t.Fatalf("next %q, want it passed through", v)
				}
				if doc.Find("script").Length() != 0 || strings.Contains(string(res.body), "<script>alert") {
					t.Fatal("the email was not escaped")
				}
				if res.cookie("gh_refresh") != nil || res.cookie("gh_access") != nil || ts.dbState(t) != state {
					t.Fatal("a failed sign-in must not start a session")
				}
			})
		}
	})
}

func TestPageLoginRateLimit(t *testing.T) {
	attempt := func(c *client, email, password string) *response {
		c.get("/login")
		return c.postForm("/login", url.Values{"email": {email}, "password": {password}})
	}
	expectLimited := func(t *testing.T, res *response, window time.Duration) {
		t.Helper()
		doc := expectPage(t, res, 429, "Sign in")
		secs, err := strconv.Atoi(res.Header.Get("Retry-After"))
		if err != nil || secs < 1 || secs > int(window/time.Second)+1 {
			t.Fatalf("Retry-After %q, want seconds within the window", res.Header.Get("Retry-After"))
		}
		if a := doc.Find(`[role="alert"]`); a.Length() != 1 || !strings.Contains(text(a), "Too many attempts") {
			t.Fatalf("alert %q", text(a))
		}
		if res.cookie("gh_refresh") != nil {
			t.Fatal("a limited sign-in must not start a session")
		}
	}
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		t.Run("per account", func(t *testing.T) {
			ts := newTestServer(t, db, func(c *handlers.Config) { c.LoginLimitAccount = ratelimit.Rate{N: 3, Per: 15 * time.Minute} })
			ts.createUser(t, "ann@example.com")
			ts.createUser(t, "bob@example.com")
			c := ts.newClient(t)
			for i, email := range []string{"ann@example.com", "ANN@example.com", " ann@example.com"} {
				if res := attempt(c, email, "not the password"); res.StatusCode != 401 {
					t.Fatalf("failure %d: %d", i+1, res.StatusCode)
				}
			}
			sessions := db.Count(t, "SELECT COUNT(*) FROM device_sessions")
			expectLimited(t, attempt(c, "ann@example.com", testPassword), 15*time.Minute)
			expectLimited(t, attempt(ts.newClient(t), "Ann@Example.com", testPassword), 15*time.Minute)
			if db.Count(t, "SELECT COUNT(*) FROM device_sessions") != sessions {
				t.Fatal("a limited sign-in created a session")
			}
			expectRedirect(t, attempt(ts.newClient(t), "bob@example.com", testPassword), "/devices")
			ts.clock.Advance(15*time.Minute + time.Second)
			expectRedirect(t, attempt(c, "ann@example.com", testPassword), "/devices")
		})
		t.Run("per IP", func(t *testing.T) {
			ts := newTestServer(t, db, func(c *handlers.Config) { c.LoginLimitIP = ratelimit.Rate{N: 5, Per: 10 * time.Minute} })
			ts.createUser(t, "cat@example.com")
			for i := range 5 {
				if res := attempt(ts.newClient(t), "user"+strconv.Itoa(i)+"@example.com", "not the password"); res.StatusCode != 401 {
					t.Fatalf("attempt %d: %d", i+1, res.StatusCode)
				}
			}
			expectLimited(t, attempt(ts.newClient(t), "cat@example.com", testPassword), 10*time.Minute)
			ts.clock.Advance(10*time.Minute + time.Second)
			expectRedirect(t, attempt(ts.newClient(t), "cat@example.com", testPassword), "/devices")
		})
	})
}

func TestPageLoginNext(t *testing.T) {
	cases := []struct{ next, want string }{
		{"", "/devices"},
		{"/account", "/account"},
		{"/devices?done=renamed", "/devices?done=renamed"},
		{"http://app.example.test/x", "http://app.example.test/x"},
		{"//evil.test", "/devices"},
		{"///evil.test", "/devices"},
		{"https://evil.test", "/devices"},
		{"http://evil.test/login", "/devices"},
		{`/\evil.test`, "/devices"},
		{`\\evil.test`, "/devices"},
		{"javascript:alert(1)", "/devices"},
		{"JavaScript:alert(1)", "/devices"},
		{"data:text/html,hi", "/devices"},
		{"https:evil.test", "/devices"},
		{"http://app.example.test@evil.test/", "/devices"},
		{"http://app.example.test.evil.test/x", "/devices"},
		{"/\t/evil.test", "/devices"},
		{" //evil.test", "/devices"},
	}
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newTestServer(t, db)
		ts.createUser(t, "ann@example.com")
		for _, tc := range cases {
			t.Run(tc.next, func(t *testing.T) {
				c := ts.newClient(t)
				doc := expectPage(t, c.get("/login?next="+url.QueryEscape(tc.next)), 200, "Sign in")
				if v, _ := doc.Find(`input[name="next"]`).Attr("value"); v != tc.next {
					t.Fatalf("hidden next %q, want %q", v, tc.next)
				}
				res := c.postForm("/login", url.Values{"email": {"ann@example.com"}, "password": {testPassword}, "next": {tc.next}})
				expectRedirect(t, res, tc.want)
				expectRedirect(t, c.get("/login?next="+url.QueryEscape(tc.next)), tc.want) // already signed in
			})
		}
		t.Run("an absolute URL on the portal itself", func(t *testing.T) {
			c := ts.newClient(t)
			c.get("/login")
			expectRedirect(t, c.postForm("/login", url.Values{"email": {"ann@example.com"}, "password": {testPassword}, "next": {ts.URL + "/account"}}), ts.URL+"/account")
		})
		t.Run("a signed-out page request comes back after sign-in", func(t *testing.T) {
			c := ts.newClient(t)
			expectRedirect(t, c.get("/account"), "/login?next=%2Faccount")
			c.get("/login?next=%2Faccount")
			expectRedirect(t, c.postForm("/login", url.Values{"email": {"ann@example.com"}, "password": {testPassword}, "next": {"/account"}}), "/account")
		})
	})
}

func TestPageSignup(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newTestServer(t, db)
		ts.createUser(t, "ann@example.com")

		t.Run("success", func(t *testing.T) {
			c := ts.browser(t, firefoxMac)
			expectPage(t, c.get("/signup"), 200, "Create your account")
			res := c.postForm("/signup", url.Values{"email": {"New@Example.com"}, "display_name": {"New Person"}, "password": {testPassword}, "password_confirm": {testPassword}})
			expectRedirect(t, res, "/devices")
			if res.cookie("gh_refresh") == nil || res.cookie("gh_access") == nil {
				t.Fatal("sign-up must sign in")
			}
			doc := expectSignedIn(t, c)
			if text(doc.Find("header .email")) != "new@example.com" || doc.Find(`ul[aria-label="Devices"] > li`).Length() != 1 {
				t.Fatal("the new account sees its one device")
			}
			if db.Count(t, "SELECT COUNT(*) FROM users WHERE email = ? AND display_name = ?", "new@example.com", "New Person") != 1 {
				t.Fatal("the account is not stored")
			}
		})

		failures := []struct {
			name, email, display, password, confirm string
			status                                  int
			field, message                          string
		}{
			{"email taken", "ANN@example.com", "Ann again", testPassword, testPassword, 409, "email", "An account with this email already exists. Sign in instead."},
			{"not an email", "ann-at-example", "", testPassword, testPassword, 400, "email", "Enter a valid email address, like name@example.com."},
			{"no email", "", "", testPassword, testPassword, 400, "email", "Enter your email address."},
			{"confirmation differs", "other@example.com", "Other", testPassword, testPassword + "!", 400, "password_confirm", "The passwords do not match."},
			{"password too short", "other@example.com", "", "short", "short", 400, "password", "Use at least 10 characters."},
			{"display name too long", "other@example.com", strings.Repeat("n", 65), testPassword, testPassword, 400, "display_name", "Use at most 64 characters."},
		}
		for _, tc := range failures {
			t.Run(tc.name, func(t *testing.T) {
				c := ts.newClient(t)
				c.get("/signup")
				state := ts.dbState(t)
				res := c.postForm("/signup", url.Values{"email": {tc.email}, "display_name": {tc.display}, "password": {tc.password}, "password_confirm": {tc.confirm}})
				doc := expectPage(t, res, tc.status, "Create your account")
				for _, f := range []string{"email", "display_name", "password", "password_confirm"} {
					want := ""
					if f == tc.field {
						want = tc.message
					}
					if got := fieldError(t, doc.Selection, `input[name="`+f+`"]`); got != want {
						t.Fatalf("error next to %s: %q, want %q", f, got, want)
					}
				}
				if v, _ := doc.Find(`input[name="email"]`).Attr("value"); v != tc.email {
					t.Fatalf("email %q not kept", v)
				}
				if v, _ := doc.Find(`input[name="display_name"]`).Attr("value"); v != tc.display {
					t.Fatalf("display name %q not kept", v)
				}
				for _, f := range []string{"password", "password_confirm"} {
					if _, has := doc.Find(`input[name="` + f + `"]`).Attr("value"); has {
						t.Fatalf("%s is sent back with a value", f)
					}
				}
				if res.cookie("gh_refresh") != nil || ts.dbState(t) != state {
					t.Fatal("a refused sign-up changed rows or signed in")
				}
			})
		}
	})
}

func TestPageSignupOff(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newTestServer(t, db, func(c *handlers.Config) { c.SignupEnabled = false })
		c := ts.newClient(t)
		doc := expectPage(t, c.get("/login"), 200, "Sign in")
		if doc.Find(`a[href="/signup"]`).Length() != 0 {
			t.Fatal("the sign-in page links to a sign-up that is off")
		}
		expectPage(t, c.get("/signup"), 404, "Page not found")
		res := c.postForm("/signup", url.Values{"email": {"new@example.com"}, "password": {testPassword}, "password_confirm": {testPassword}})
		expectPage(t, res, 404, "Page not found")
		if n := db.Count(t, "SELECT COUNT(*) FROM users"); n != 0 || res.cookie("gh_refresh") != nil {
			t.Fatal("sign-up is off but created an account")
		}
	})
}

func TestPageSecurityHeaders(t *testing.T) {
	cases := []struct {
		name     string
		request  func(h *household) *response
		status   int
		signedIn bool
	}{
		{"sign-in page", func(h *household) *response { return h.ts.newClient(h.laptop.t).get("/login") }, 200, false},
		{"sign-up page", func(h *household) *response { return h.ts.newClient(h.laptop.t).get("/signup") }, 200, false},
		{"failed sign-in", func(h *household) *response {
			c := h.ts.newClient(h.laptop.t)
			c.get("/login")
			return c.postForm("/login", url.Values{"email": {"ann@example.com"}, "password": {"nope nope nope"}})
		}, 401, false},
		{"unknown page", func(h *household) *response { return h.ts.newClient(h.laptop.t).get("/no-such-page") }, 404, false},
		{"devices", func(h *household) *response { return h.laptop.get("/devices") }, 200, true},
		{"account", func(h *household) *response { return h.laptop.get("/account") }, 200, true},
		{"confirmation", func(h *household) *response { return h.laptop.get("/devices/signout-everywhere") }, 200, true},
		{"rename refused", func(h *household) *response {
			h.laptop.get("/devices")
			return h.laptop.postForm("/devices/"+h.laptopSID+"/rename", url.Values{"name": {""}})
		}, 400, true},
		{"password change refused", func(h *household) *response {
			h.laptop.get("/account")
			return h.laptop.postForm("/account/password", url.Values{"current_password": {"wrong wrong"}, "new_password": {newPassword}, "new_password_confirm": {newPassword}})
		}, 400, true},
		{"another user's device", func(h *household) *response {
			h.laptop.get("/devices")
			return h.laptop.postForm("/devices/no-such-session/signout", nil)
		}, 404, true},
	}
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		h := newHousehold(t, db)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				h.use(t)
				res := tc.request(h)
				if res.StatusCode != tc.status || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
					t.Fatalf("%d %s", res.StatusCode, res.Header.Get("Content-Type"))
				}
				csp := res.Header.Get("Content-Security-Policy")
				if csp == "" || strings.Contains(csp, "'unsafe-inline'") || strings.Contains(csp, "'unsafe-eval'") || !strings.Contains(csp, "frame-ancestors 'none'") {
					t.Fatalf("Content-Security-Policy %q", csp)
				}
				if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
					t.Fatalf("X-Content-Type-Options %q", got)
				}
				if got := res.Header.Get("Referrer-Policy"); !slices.Contains([]string{"no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"}, got) {
					t.Fatalf("Referrer-Policy %q", got)
				}
				if cc := res.Header.Get("Cache-Control"); tc.signedIn && !strings.Contains(cc, "no-store") {
					t.Fatalf("a signed-in page with Cache-Control %q", cc)
				}
				if res.Doc(t).Find("script").Length() != 0 {
					t.Fatal("pages work without JavaScript and carry no inline script")
				}
			})
		}
	})
}

func TestPageLogout(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		h := newHousehold(t, db)
		doc := expectSignedIn(t, h.laptop)
		form := doc.Find(`header form[method="post"][action="/logout"]`)
		if form.Length() != 1 || text(form.Find("button")) != "Sign out" {
			t.Fatal("the header has no sign-out form")
		}
		res := h.laptop.postForm("/logout", nil)
		expectRedirect(t, res, "/login")
		for _, name := range []string{"gh_refresh", "gh_access"} {
			if ck := res.cookie(name); ck == nil || ck.MaxAge >= 0 && ck.Value != "" {
				t.Fatalf("%s must be cleared: %+v", name, ck)
			}
			if h.laptop.cookieValue(name) != "" {
				t.Fatalf("%s is still in the jar", name)
			}
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM device_sessions WHERE id = ? AND revoked_at IS NOT NULL", h.laptopSID); n != 1 {
			t.Fatal("the session must be revoked")
		}
		expectSignedOut(t, h.laptop)
		expectSignedIn(t, h.phone)

		h.laptop.get("/login")
		state := h.ts.dbState(t)
		expectRedirect(t, h.laptop.postForm("/logout", nil), "/login")
		if h.ts.dbState(t) != state {
			t.Fatal("signing out when signed out changed rows")
		}
	})
}

// Two tabs of one browser whose access cookie expired load pages at once: both answer without a
// sign-in prompt and converge on one refresh token, and nothing is taken for a replay.
func TestPageParallelTabsRefreshOnce(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		h := newHousehold(t, db)
		h.ts.clock.Advance(11 * time.Minute)
		tabs := make([]*client, 6)
		for i := range tabs {
			tabs[i] = h.ts.browser(t, firefoxMac)
			for _, name := range []string{"gh_refresh", "gh_access", "gh_device", "gh_csrf"} {
				tabs[i].setCookie(name, h.laptop.cookieValue(name))
			}
		}
		results := make([]*response, len(tabs))
		var wg sync.WaitGroup
		for i, tab := range tabs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = tab.get("/devices")
			}()
		}
		wg.Wait()
		successor := ""
		for i, res := range results {
			if res.StatusCode != 200 {
				t.Fatalf("tab %d: %d to %q", i, res.StatusCode, res.Header.Get("Location"))
			}
			ck := res.cookie("gh_refresh")
			if ck == nil || ck.Value == "" {
				t.Fatalf("tab %d got no rotated refresh cookie", i)
			}
			if successor == "" {
				successor = ck.Value
			}
			if ck.Value != successor {
				t.Fatalf("tab %d got another successor: the family forked", i)
			}
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM security_events WHERE kind = 'token_reused'"); n != 0 {
			t.Fatal("parallel tabs were taken for a replay")
		}
		h.ts.clock.Advance(11 * time.Minute)
		expectSignedIn(t, tabs[0])
		expectSignedIn(t, h.phone)
	})
}

// A stolen refresh token used after its owner rotated it signs that device out, and the other
// devices see the replay in the security activity as a warning.
func TestPageReplayShowsWarning(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		h := newHousehold(t, db)
		stolen := h.laptop.cookieValue("gh_refresh")
		h.laptop.deleteCookie("gh_access")
		expectSignedIn(t, h.laptop) // rotates
		h.ts.clock.Advance(11 * time.Second)

		thief := h.ts.newClient(t)
		thief.setCookie("gh_refresh", stolen)
		expectRedirect(t, thief.get("/devices"), "/login?next=%2Fdevices")
		expectSignedOut(t, h.laptop)

		doc := expectSignedIn(t, h.phone)
		if deviceRow(doc, h.laptopSID).Length() != 0 {
			t.Fatal("the replayed device is still listed")
		}
		warning := doc.Find(`ul[aria-label="Security activity"] > li`).FilterFunction(func(_ int, li *goquery.Selection) bool {
			return strings.Contains(li.Text(), "Replayed refresh token detected: device signed out")
		})
		if warning.Length() != 1 || !strings.Contains(warning.Text(), "Warning") || !strings.Contains(warning.Text(), "Firefox on macOS") {
			t.Fatalf("the replay is not shown as a warning naming the device: %q", strings.Join(strings.Fields(doc.Find(`ul[aria-label="Security activity"]`).Text()), " "))
		}
	})
}

// A device session past its absolute lifetime is gone: it is not listed, and its id is as
// unknown as any other, so renaming or signing it out answers 404 and changes nothing.
func TestPageExpiredDeviceIsGone(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newTestServer(t, db)
		ts.createUser(t, "ann@example.com")
		phone := ts.browser(t, chromeAndroid)
		phone.pageSignIn("ann@example.com")
		phoneSID := ts.sessionOf(t, phone)
		ts.clock.Advance(700 * time.Hour)
		laptop := ts.browser(t, firefoxMac)
		laptop.pageSignIn("ann@example.com")
		ts.clock.Advance(21 * time.Hour) // the phone's session is 721h old (max 720h), the laptop's 21h

		expectSignedOut(t, phone)
		if deviceRow(expectSignedIn(t, laptop), phoneSID).Length() != 0 {
			t.Fatal("an expired device session is listed")
		}
		for _, tc := range []struct {
			name, action string
			values       url.Values
		}{
			{"rename", "rename", url.Values{"name": {"Zombie"}}},
			{"rename with a bad name", "rename", url.Values{"name": {""}}},
			{"sign out", "signout", nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				laptop.t = t
				laptop.get("/devices")
				state := ts.dbState(t)
				res := laptop.postForm("/devices/"+phoneSID+"/"+tc.action, tc.values)
				expectPage(t, res, 404, "Page not found")
				if got := ts.dbState(t); got != state {
					t.Fatalf("a request on an expired device changed rows: %s, was %s", got, state)
				}
			})
		}
	})
}

// rawRequest sends bytes no well-behaved client would send and reads the answer.
func (ts *testServer) rawRequest(t *testing.T, request string) *http.Response {
	t.Helper()
	u, _ := url.Parse(ts.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(request)); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

// Odd but harmless input from a browser is never a 5xx: the sign-in goes on (or is refused with
// a 4xx), and a form field that cannot be stored is a 400 next to that field.
func TestPageOddInputIsNeverA5xx(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newTestServer(t, db)
		ts.createUser(t, "ann@example.com")

		t.Run("sign-in from a User-Agent that is not UTF-8", func(t *testing.T) {
			c := ts.browser(t, "Mozilla/5.0 (X11; \xff\xfe) Firefox/121.0")
			c.get("/login")
			res := c.postForm("/login", url.Values{"email": {"ann@example.com"}, "password": {testPassword}})
			if res.StatusCode >= 500 {
				t.Fatalf("%d: a User-Agent header is the client's input, never a server error", res.StatusCode)
			}
			if res.StatusCode == 303 {
				expectSignedIn(t, c)
			}
		})
		t.Run("sign-in from a User-Agent with a NUL byte", func(t *testing.T) {
			c := ts.newClient(t)
			c.get("/login")
			body := url.Values{"email": {"ann@example.com"}, "password": {testPassword}, "_csrf": {c.csrf}}.Encode()
			u, _ := url.Parse(ts.URL)
			var cookies []string
			for _, ck := range c.http.Jar.Cookies(u) {
				cookies = append(cookies, ck.Name+"="+ck.Value)
			}
			res := ts.rawRequest(t, fmt.Sprintf("POST /login HTTP/1.1\r\nHost: %s\r\nUser-Agent: Firefox\x00121\r\nCookie: %s\r\n"+
				"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
				u.Host, strings.Join(cookies, "; "), len(body), body))
			if res.StatusCode >= 500 {
				t.Fatalf("%d: a User-Agent header is the client's input, never a server error", res.StatusCode)
			}
		})
		t.Run("sign-up with a NUL in the display name", func(t *testing.T) {
			c := ts.newClient(t)
			c.get("/signup")
			state := ts.dbState(t)
			res := c.postForm("/signup", url.Values{"email": {"nul@example.com"}, "display_name": {"Ann\x00Lee"}, "password": {testPassword}, "password_confirm": {testPassword}})
			doc := expectPage(t, res, 400, "Create your account")
			if fieldError(t, doc.Selection, `input[name="display_name"]`) == "" {
				t.Fatal("no error next to the display name")
			}
			if ts.dbState(t) != state {
				t.Fatal("a refused sign-up changed rows")
			}
		})
	})
}
