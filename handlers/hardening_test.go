package handlers_test

// Tests for the findings of the outside security review (issue 10), one class each; each failed
// before its fix. docs/SECURITY.md lists them with their rules.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"gatehouse/handlers"
	"gatehouse/models/testdb"
	"gatehouse/services/auth"
	"gatehouse/services/metrics"
	"gatehouse/services/ratelimit"
)

// bomb is n bytes of zeros, gzipped: about a thousandth of n on the wire.
func bomb(t *testing.T, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zero := make([]byte, 1<<20)
	for written := 0; written < n; written += len(zero) {
		zw.Write(zero)
	}
	zw.Close()
	return buf.Bytes()
}

// TestCompressedBodiesAreNeverInflated (finding 1): no body is inflated, on any route, in any
// content type or encoding. 32 MiB of zeros gzipped to ~32 KB is sent as a multipart form, an
// urlencoded form and JSON to the routes that read bodies, declared as each encoding; every one
// is answered 415 and the server allocates a small multiple of the body limit, not the 32 MiB.
func TestCompressedBodiesAreNeverInflated(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newTestServer(t, db)
		ts.createUser(t, "ann@example.com")
		c := ts.newClient(t)
		c.pageSignIn("ann@example.com")
		body := bomb(t, 32<<20)
		var form bytes.Buffer
		mw := multipart.NewWriter(&form)
		boundary := mw.Boundary()
		routes := []struct{ path, contentType string }{
			{"/login", "multipart/form-data; boundary=" + boundary},
			{"/login", "application/x-www-form-urlencoded"},
			{"/signup", "multipart/form-data; boundary=" + boundary},
			{"/account/password", "multipart/form-data; boundary=" + boundary},
			{"/devices/signout-others", "application/x-www-form-urlencoded"},
			{"/auth/login", "application/json"},
			{"/auth/refresh", "application/json"},
		}
		state := ts.dbState(t)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for _, r := range routes {
			for _, enc := range []string{"gzip", "deflate", "br", "zstd", "GZIP", "gzip, identity"} {
				res := c.do(http.MethodPost, r.path, bytes.NewReader(body), map[string]string{"Content-Type": r.contentType, "Content-Encoding": enc})
				if res.StatusCode != fiber.StatusUnsupportedMediaType {
					t.Fatalf("POST %s (%s, %s): %d, want 415: %.200s", r.path, r.contentType, enc, res.StatusCode, res.body)
				}
			}
		}
		runtime.ReadMemStats(&after)
		allocated := after.TotalAlloc - before.TotalAlloc
		t.Logf("%d compressed requests of %d bytes (32 MiB inflated): %.1f MiB allocated in the test process", len(routes)*6, len(body), float64(allocated)/(1<<20))
		if allocated > 16<<20 {
			t.Fatalf("the server allocated %.1f MiB for %d requests of %d bytes: a body was inflated", float64(allocated)/(1<<20), len(routes)*6, len(body))
		}
		if ts.dbState(t) != state {
			t.Fatal("a refused compressed request changed rows")
		}
		// identity is no compression: an ordinary form still works.
		res := c.do(http.MethodPost, "/login", strings.NewReader(url.Values{"email": {"x@example.com"}}.Encode()),
			map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "identity"})
		if res.StatusCode == fiber.StatusUnsupportedMediaType {
			t.Fatal("Content-Encoding: identity was refused")
		}
	})
}

// TestRequestStringsOutliveTheirRequest (finding 2): strings taken from a request and kept after
// it (metric labels, the sids handed to the revocation fan-out) are copies. Concurrent requests
// with distinct methods, routes and sids; afterwards /metrics answers 200 and every method label
// and every revoked sid is one that was really sent.
func TestRequestStringsOutliveTheirRequest(t *testing.T) {
	db := testdb.SQLite(t)
	sqlDB, err := db.Store.SQL()
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(sqlDB.Stats, db.Store.CountLiveSessions, func() bool { return true })
	seen := &revokedIDs{ids: map[string]bool{}}
	ts := newTestServerWithDeps(t, db, nil, func(d *handlers.Deps, a *auth.Deps) {
		d.Metrics = m
		a.Observer = seen
	})
	ts.createUser(t, "ann@example.com")
	owner := ts.newClient(t)
	token := owner.apiSignIn("ann@example.com")
	var sids []string
	for i := range 12 {
		other := ts.newClient(t)
		res := other.postJSON("/auth/login", map[string]string{"email": "ann@example.com", "password": testPassword}, map[string]string{"X-Device-Id": fmt.Sprintf("device-%04d", i)})
		access := res.JSON(t)["access_token"].(string)
		sids = append(sids, other.do(http.MethodGet, "/api/me", nil, bearer(access)).JSON(t)["session_id"].(string))
	}
	methods := []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions, "PROPFIND"}
	paths := []string{"/api/me", "/auth/refresh", "/devices", "/login", "/healthz", "/nowhere/at/all"}
	var wg sync.WaitGroup
	for i, sid := range sids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner.do(http.MethodDelete, "/api/sessions/"+sid, nil, bearer(token))
			for j := range 20 {
				c := ts.newClient(t)
				c.do(methods[(i+j)%len(methods)], paths[(i*7+j)%len(paths)], nil, bearer(token))
			}
		}()
	}
	wg.Wait()
	res := ts.newClient(t).get("/metrics")
	if res.StatusCode != 200 {
		t.Fatalf("/metrics answered %d after concurrent requests: %.300s", res.StatusCode, res.body)
	}
	sent := map[string]bool{}
	for _, m := range methods {
		sent[m] = true
	}
	for _, match := range regexp.MustCompile(`method="([^"]*)"`).FindAllStringSubmatch(string(res.body), -1) {
		if !sent[match[1]] {
			t.Fatalf("metric label method=%q was never sent", match[1])
		}
	}
	want := map[string]bool{}
	for _, sid := range sids {
		want[sid] = true
	}
	seen.mu.Lock()
	defer seen.mu.Unlock()
	for id := range seen.ids {
		if !want[id] {
			t.Fatalf("the revocation fan-out was handed %q, a sid no request named", id)
		}
	}
	if len(seen.ids) != len(sids) {
		t.Fatalf("%d sids revoked, want %d", len(seen.ids), len(sids))
	}
}

// revokedIDs is an auth.Observer that keeps every revoked session id it is handed, as the
// revocation caches do.
type revokedIDs struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (r *revokedIDs) RefreshOutcome(string) {}
func (r *revokedIDs) LoginOutcome(string)   {}
func (r *revokedIDs) Revoked(_ string, ids []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		r.ids[id] = true
	}
}

// TestEveryPasswordCheckIsLimited (finding 3): the password change and the re-authentication
// prompt share the account's password limit with sign-in. Ten wrong guesses at the current
// password are refused and recorded; the eleventh try is 429 even with the right password, and
// the password is unchanged.
func TestEveryPasswordCheckIsLimited(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newTestServerWithAuth(t, db, func(c *auth.Config) { c.ReauthWindow = time.Minute })
		ts.createUser(t, "ann@example.com")
		thief := ts.newClient(t)
		thief.pageSignIn("ann@example.com")
		hash := ts.queryString(t, "SELECT password_hash FROM users WHERE email = ?", "ann@example.com")
		for i := range 5 {
			thief.get("/account")
			res := thief.postForm("/account/password", url.Values{"current_password": {fmt.Sprintf("guess number %d", i)}, "new_password": {"stolen account 1"}, "new_password_confirm": {"stolen account 1"}})
			if res.StatusCode != 400 {
				t.Fatalf("wrong guess %d: %d, want 400", i, res.StatusCode)
			}
		}
		ts.clock.Advance(2 * time.Minute) // the prompt asks for the password again
		for i := range 5 {
			thief.get("/devices")
			res := thief.postForm("/devices/signout-others", url.Values{"password": {fmt.Sprintf("prompt guess %d", i)}})
			if res.StatusCode != 400 {
				t.Fatalf("wrong prompt guess %d: %d, want 400", i, res.StatusCode)
			}
		}
		thief.get("/account")
		res := thief.postForm("/account/password", url.Values{"current_password": {testPassword}, "new_password": {"stolen account 1"}, "new_password_confirm": {"stolen account 1"}})
		if res.StatusCode != fiber.StatusTooManyRequests {
			t.Fatalf("11th try with the right password: %d, want 429 once 10 guesses failed", res.StatusCode)
		}
		if ts.queryString(t, "SELECT password_hash FROM users WHERE email = ?", "ann@example.com") != hash {
			t.Fatal("the password was changed past the limit")
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM security_events WHERE kind = 'password_check_failed'"); n != 10 {
			t.Fatalf("%d failed password checks recorded, want 10", n)
		}
		// The limit is the account's: sign-in is refused too.
		res = ts.newClient(t).postJSON("/auth/login", map[string]string{"email": "ann@example.com", "password": testPassword}, nil)
		if res.StatusCode != fiber.StatusTooManyRequests {
			t.Fatalf("sign-in after 10 failed checks: %d, want 429", res.StatusCode)
		}
	})
}

// TestConcurrentGuessesEvaluateAtMostTheLimit (findings 3 and 4): the account's attempt is
// reserved before argon2 runs, so 40 concurrent wrong sign-ins, or 160 concurrent wrong password
// changes, with a limit of 10 evaluate at most 10 passwords.
func TestConcurrentGuessesEvaluateAtMostTheLimit(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newTestServer(t, db)
		ts.createUser(t, "ann@example.com")
		ts.createUser(t, "bob@example.com")
		statuses := hammer(40, func(int) int {
			return ts.newClient(t).postJSON("/auth/login", map[string]string{"email": "ANN@example.com ", "password": "wrong password!"}, nil).StatusCode
		})
		t.Logf("40 concurrent wrong sign-ins, limit 10: %v", statuses)
		if statuses[401] != 10 || statuses[429] != 30 {
			t.Fatalf("statuses %v: want exactly 10 passwords evaluated (401) and 30 refused (429)", statuses)
		}
		ts.svc.Wait()
		if n := db.Count(t, "SELECT COUNT(*) FROM security_events WHERE kind = 'sign_in_failed'"); n != 10 {
			t.Fatalf("%d failed sign-ins recorded, want 10", n)
		}

		thief := ts.newClient(t)
		thief.pageSignIn("bob@example.com")
		thief.get("/account")
		tabs := make([]*client, 160) // one tab each: a client's state is not for concurrent use
		for i := range tabs {
			tabs[i] = thief.clone()
		}
		statuses = hammer(160, func(i int) int {
			return tabs[i].postForm("/account/password", url.Values{"current_password": {fmt.Sprintf("guess %d", i)}, "new_password": {"stolen account 1"}, "new_password_confirm": {"stolen account 1"}}).StatusCode
		})
		t.Logf("160 concurrent wrong password changes, limit 10: %v", statuses)
		if statuses[400] != 10 || statuses[429] != 150 {
			t.Fatalf("statuses %v: want exactly 10 passwords evaluated (400) and 150 refused (429)", statuses)
		}
	})
}

// clone is another tab of the same browser: the same cookies and CSRF token, its own state.
func (c *client) clone() *client {
	tab := c.ts.newClient(c.t)
	u, _ := url.Parse(c.ts.URL)
	tab.http.Jar.SetCookies(u, c.http.Jar.Cookies(u))
	tab.csrf = c.csrf
	return tab
}

// hammer runs n calls at once and counts their statuses.
func hammer(n int, call func(i int) int) map[int]int {
	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		wg       sync.WaitGroup
		start    = make(chan struct{})
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			status := call(i)
			mu.Lock()
			statuses[status]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	return statuses
}

// TestRightPasswordsDoNotUseUpTheLimit: the reservation of a right password is given back.
func TestRightPasswordsDoNotUseUpTheLimit(t *testing.T) {
	ts := newTestServer(t, testdb.SQLite(t))
	ts.createUser(t, "ann@example.com")
	for i := range 15 {
		res := ts.newClient(t).postJSON("/auth/login", map[string]string{"email": "ann@example.com", "password": testPassword}, nil)
		if res.StatusCode != 200 {
			t.Fatalf("right password, sign-in %d: %d, want 200 (a right password must not count)", i, res.StatusCode)
		}
	}
}

// TestPasswordChangeEndsEveryEarlierToken (finding 5): a copy of this browser's refresh token
// taken before the password change does not work after it; the browser itself stays signed in.
func TestPasswordChangeEndsEveryEarlierToken(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newTestServer(t, db)
		ts.createUser(t, "ann@example.com")
		browser := ts.newClient(t)
		browser.pageSignIn("ann@example.com")
		copied := browser.cookieValue("gh_refresh")
		browser.get("/account")
		res := browser.postForm("/account/password", url.Values{"current_password": {testPassword}, "new_password": {"a brand new secret"}, "new_password_confirm": {"a brand new secret"}})
		expectRedirect(t, res, "/account?done=password")
		if browser.cookieValue("gh_refresh") == copied {
			t.Fatal("the browser kept its refresh token across the password change")
		}
		thief := ts.newClient(t)
		thief.setCookie("gh_refresh", copied)
		if res := thief.do(http.MethodPost, "/auth/refresh", nil, nil); res.StatusCode != 401 {
			t.Fatalf("refresh with the copy taken before the password change: %d %s, want 401", res.StatusCode, res.body)
		}
		expectSignedIn(t, browser)
		browser.deleteCookie("gh_access") // the new refresh token works too
		expectSignedIn(t, browser)
		if n := db.Count(t, "SELECT COUNT(*) FROM device_sessions WHERE revoked_at IS NULL"); n != 1 {
			t.Fatalf("%d live sessions after the password change, want this browser's one", n)
		}
	})
}

// cookieHeader is the Cookie header this browser sends, for requests made outside its jar.
func (c *client) cookieHeader() string {
	u, _ := url.Parse(c.ts.URL)
	var cookies []string
	for _, ck := range c.http.Jar.Cookies(u) {
		cookies = append(cookies, ck.Name+"="+ck.Value)
	}
	return strings.Join(cookies, "; ")
}

// rawRequest sends bytes as they are, so a path can hold invalid UTF-8.
func rawRequest(t testing.TB, base, method, path string, header map[string]string, body string) int {
	t.Helper()
	u, _ := url.Parse(base)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var req strings.Builder
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Length: %d\r\n", method, path, u.Host, len(body))
	for k, v := range header {
		fmt.Fprintf(&req, "%s: %s\r\n", k, v)
	}
	req.WriteString("\r\n" + body)
	if _, err := io.WriteString(conn, req.String()); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestInvalidUTF8NeverReachesTheDatabase (finding 6): ids in paths that are not UTF-8 are 404 on
// both databases, not 500, and change nothing.
func TestInvalidUTF8NeverReachesTheDatabase(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newTestServer(t, db)
		ts.createUser(t, "ann@example.com")
		app := ts.newClient(t)
		token := app.apiSignIn("ann@example.com")
		browser := ts.newClient(t)
		browser.pageSignIn("ann@example.com")
		browser.get("/devices")
		page := map[string]string{"Cookie": browser.cookieHeader(), "Content-Type": "application/x-www-form-urlencoded"}
		form := "_csrf=" + url.QueryEscape(browser.csrf) + "&name=x"
		state := ts.dbState(t)
		for _, bad := range []string{"\xc3(", "\xff", "\xff\xfe\xfd", "%00", "%ff", strings.Repeat("\xe2\x82", 20)} {
			if got := rawRequest(t, ts.URL, "DELETE", "/api/sessions/"+bad, bearer(token), ""); got != 404 {
				t.Fatalf("DELETE /api/sessions/%q: %d, want 404", bad, got)
			}
			for _, action := range []string{"signout", "rename"} {
				if got := rawRequest(t, ts.URL, "POST", "/devices/"+bad+"/"+action, page, form); got != 404 {
					t.Fatalf("POST /devices/%q/%s: %d, want 404", bad, action, got)
				}
			}
		}
		if ts.dbState(t) != state {
			t.Fatal("a request with a malformed id changed rows")
		}
	})
}

// TestGrowthIsBounded (finding 7): live sessions per user are capped (the least recently used
// goes), an action that changes nothing records nothing, and refreshes and sign-outs per session
// are limited.
func TestGrowthIsBounded(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newTestServerWithAuth(t, db, func(c *auth.Config) { c.MaxSessions = 3 }, func(c *handlers.Config) {
			c.SessionLimit = ratelimit.Rate{N: 5, Per: time.Minute}
		})
		ts.createUser(t, "ann@example.com")
		var clients []*client
		var token string
		for i := range 6 {
			c := ts.newClient(t)
			res := c.postJSON("/auth/login", map[string]string{"email": "ann@example.com", "password": testPassword}, map[string]string{"X-Device-Id": fmt.Sprintf("device-%04d", i)})
			if res.StatusCode != 200 {
				t.Fatalf("sign-in %d: %d", i, res.StatusCode)
			}
			token = res.JSON(t)["access_token"].(string)
			clients = append(clients, c)
			ts.clock.Advance(time.Second)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM device_sessions WHERE revoked_at IS NULL"); n != 3 {
			t.Fatalf("%d live sessions, want the cap of 3", n)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM security_events WHERE kind = 'session_evicted'"); n != 3 {
			t.Fatalf("%d evictions recorded, want 3", n)
		}
		res := clients[5].do(http.MethodGet, "/api/sessions", nil, bearer(token))
		if list := strings.Count(string(res.body), `"id"`); list != 3 {
			t.Fatalf("/api/sessions lists %d sessions, want 3", list)
		}
		if res := clients[0].do(http.MethodPost, "/auth/refresh", nil, map[string]string{"X-Device-Id": "device-0000"}); res.StatusCode != 401 {
			t.Fatalf("the evicted (least recently used) device refreshed: %d", res.StatusCode)
		}

		// Refreshes per session: 5 a minute, then 429, and no token row for the refused ones.
		device := map[string]string{"X-Device-Id": "device-0005"}
		for i := range 5 {
			if res := clients[5].do(http.MethodPost, "/auth/refresh", nil, device); res.StatusCode != 200 {
				t.Fatalf("refresh %d: %d %s", i, res.StatusCode, res.body)
			}
		}
		tokens := db.Count(t, "SELECT COUNT(*) FROM refresh_tokens")
		if res := clients[5].do(http.MethodPost, "/auth/refresh", nil, device); res.StatusCode != 429 {
			t.Fatalf("6th refresh in a minute: %d, want 429", res.StatusCode)
		}
		if db.Count(t, "SELECT COUNT(*) FROM refresh_tokens") != tokens {
			t.Fatal("a refused refresh added a token row")
		}

		// Sign-outs per session: revoke-others that finds nothing records nothing, and is limited.
		access := clients[4].do(http.MethodPost, "/auth/refresh", nil, map[string]string{"X-Device-Id": "device-0004"}).JSON(t)["access_token"].(string)
		clients[4].do(http.MethodPost, "/api/sessions/revoke-others", nil, bearer(access))
		events := db.Count(t, "SELECT COUNT(*) FROM security_events")
		for i := range 4 {
			if res := clients[4].do(http.MethodPost, "/api/sessions/revoke-others", nil, bearer(access)); res.StatusCode != 204 {
				t.Fatalf("revoke-others %d: %d", i, res.StatusCode)
			}
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM security_events"); n != events {
			t.Fatalf("revoke-others with no other device recorded %d events", n-events)
		}
		if res := clients[4].do(http.MethodPost, "/api/sessions/revoke-others", nil, bearer(access)); res.StatusCode != 429 {
			t.Fatalf("6th revoke-others in a minute: %d, want 429", res.StatusCode)
		}
	})
}

// TestIPv6ClientsCountByNetwork (finding 8): the addresses of one /64 share one sign-in budget.
func TestIPv6ClientsCountByNetwork(t *testing.T) {
	ts := newTestServer(t, testdb.SQLite(t), func(c *handlers.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		c.LoginLimitIP = ratelimit.Rate{N: 5, Per: time.Minute}
	})
	var refused atomic.Int32
	for i := range 8 {
		ip := fmt.Sprintf("2001:db8:1:2:%x::%x", i*4099, i+1)
		res := ts.newClient(t).postJSON("/auth/login", map[string]string{"email": fmt.Sprintf("u%d@example.com", i), "password": "x"}, map[string]string{"X-Forwarded-For": ip})
		if res.StatusCode == 429 {
			refused.Add(1)
		}
	}
	if refused.Load() != 3 {
		t.Fatalf("%d of 8 sign-ins from one /64 refused, want 3 past a limit of 5", refused.Load())
	}
	if res := ts.newClient(t).postJSON("/auth/login", map[string]string{"email": "v@example.com", "password": "x"}, map[string]string{"X-Forwarded-For": "2001:db8:1:3::1"}); res.StatusCode == 429 {
		t.Fatal("another /64 shares the budget")
	}
}

// TestPlantedCookiesAreWorthlessAfterSignIn (finding 10): sign-in replaces the CSRF and device
// cookies, and a form token names the session, so a cookie pair planted before sign-in (from a
// sibling subdomain, say) does not validate after it.
func TestPlantedCookiesAreWorthlessAfterSignIn(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newTestServer(t, db)
		ts.createUser(t, "ann@example.com")
		ts.createUser(t, "eve@example.com")
		eve := ts.newClient(t)
		eve.get("/login")
		plantedCSRF, plantedToken := eve.cookieValue("gh_csrf"), eve.csrf
		victim := ts.newClient(t)
		victim.setCookie("gh_csrf", plantedCSRF)
		victim.setCookie("gh_device", "planted-device-id")
		victim.pageSignIn("ann@example.com")
		if victim.cookieValue("gh_csrf") == plantedCSRF || victim.cookieValue("gh_device") == "planted-device-id" {
			t.Fatal("sign-in kept a planted CSRF or device cookie")
		}
		victim.setCookie("gh_csrf", plantedCSRF) // planted again after sign-in
		res := victim.postRaw("/devices/signout-others", url.Values{"_csrf": {plantedToken}}, nil)
		if res.StatusCode != 403 {
			t.Fatalf("a cookie pair from before sign-in: %d, want 403", res.StatusCode)
		}
		// A token of another signed-in session with the same cookie does not validate either.
		eve.setCookie("gh_csrf", plantedCSRF)
		eve.pageSignIn("eve@example.com")
		eve.get("/devices")
		victim.setCookie("gh_csrf", eve.cookieValue("gh_csrf"))
		if res := victim.postRaw("/devices/signout-others", url.Values{"_csrf": {eve.csrf}}, nil); res.StatusCode != 403 {
			t.Fatalf("another session's token with its cookie: %d, want 403", res.StatusCode)
		}
	})
}

// TestCSRFTokenIsNotReadFromTheQuery (finding 10): the token, like every form field, comes from
// the body only.
func TestCSRFTokenIsNotReadFromTheQuery(t *testing.T) {
	ts := newTestServer(t, testdb.SQLite(t))
	ts.createUser(t, "ann@example.com")
	c := ts.newClient(t)
	c.pageSignIn("ann@example.com")
	c.get("/devices")
	res := c.postRaw("/logout?_csrf="+url.QueryEscape(c.csrf), url.Values{}, nil)
	if res.StatusCode != 403 {
		t.Fatalf("POST /logout with the token in the query: %d, want 403", res.StatusCode)
	}
	expectSignedIn(t, c)
	stranger := ts.newClient(t)
	stranger.get("/login")
	res = stranger.postRaw("/login?email=ann%40example.com&password="+url.QueryEscape(testPassword), url.Values{"_csrf": {stranger.csrf}}, nil)
	if res.StatusCode == fiber.StatusSeeOther {
		t.Fatal("an email and password in the query string signed in")
	}
}

// TestRoutesAreCaseSensitive (finding 10): /API/me and /AUTH/refresh are not the JSON routes in
// disguise: they are unknown routes, and nothing is rotated or cleared.
func TestRoutesAreCaseSensitive(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newTestServer(t, db)
		ts.createUser(t, "ann@example.com")
		c := ts.newClient(t)
		token := c.apiSignIn("ann@example.com")
		tokens := db.Count(t, "SELECT COUNT(*) FROM refresh_tokens")
		for _, path := range []string{"/API/me", "/Api/sessions", "/AUTH/refresh", "/Auth/logout"} {
			method := http.MethodGet
			if strings.Contains(strings.ToLower(path), "auth") {
				method = http.MethodPost
			}
			res := c.do(method, path, nil, bearer(token))
			if res.StatusCode != 404 {
				t.Fatalf("%s %s: %d, want 404", method, path, res.StatusCode)
			}
			if len(res.Header.Values("Set-Cookie")) != 0 {
				t.Fatalf("%s %s touched cookies", method, path)
			}
		}
		if db.Count(t, "SELECT COUNT(*) FROM refresh_tokens") != tokens {
			t.Fatal("a miscased route rotated a token")
		}
		if res := c.do(http.MethodPost, "/auth/refresh", nil, nil); res.StatusCode != 200 {
			t.Fatalf("the refresh cookie stopped working: %d", res.StatusCode)
		}
	})
}

// TestNamesCannotHideTheirText (finding 10): device and display names refuse bidirectional
// overrides and other invisible format characters that make a list read differently.
func TestNamesCannotHideTheirText(t *testing.T) {
	ts := newTestServer(t, testdb.SQLite(t))
	ts.createUser(t, "ann@example.com")
	c := ts.newClient(t)
	for _, name := range []string{"Phone\u202egnp.exe", "\u2066Laptop\u2069", "a\u200bb", "x\u061cy", "\ufeffTablet"} {
		res := c.postJSON("/auth/login", map[string]string{"email": "ann@example.com", "password": testPassword, "device_name": name}, nil)
		if res.StatusCode != 400 {
			t.Fatalf("device_name %q: %d, want 400", name, res.StatusCode)
		}
		if _, err := ts.svc.CreateUser(context.Background(), "x@example.com", name, testPassword); err == nil {
			t.Fatalf("display name %q accepted", name)
		}
	}
	res := c.postJSON("/auth/login", map[string]string{"email": "ann@example.com", "password": testPassword, "device_name": "Rae's phone 👩\u200d💻"}, nil)
	if res.StatusCode != 200 {
		t.Fatalf("an emoji sequence with a zero-width joiner: %d, want 200", res.StatusCode)
	}
}

// FuzzSessionIDPaths (finding 6): any bytes as the session id of the routes that take one answer
// a client error, never a 5xx, on SQLite and, when configured, PostgreSQL.
func FuzzSessionIDPaths(f *testing.F) {
	for _, seed := range []string{"\xc3(", "\xff", "abc", "%00", "aaaaaaaaaaaaaaaaaaaaaa", "\xe2\x82\xac\xe2", "..", "x/y", strings.Repeat("z", 300)} {
		f.Add(seed)
	}
	type target struct {
		ts    *testServer
		token string
		page  map[string]string
		form  string
	}
	var targets []target
	dbs := []*testdb.DB{testdb.SQLite(f)}
	if testdb.PostgresURL(f) != "" {
		dbs = append(dbs, testdb.Postgres(f))
	}
	for _, db := range dbs {
		ts := newTestServer(f, db)
		ts.createUser(f, "ann@example.com")
		app := ts.newClient(f)
		token := app.apiSignIn("ann@example.com")
		browser := ts.newClient(f)
		browser.pageSignIn("ann@example.com")
		browser.get("/devices")
		page := map[string]string{"Cookie": browser.cookieHeader(), "Content-Type": "application/x-www-form-urlencoded"}
		targets = append(targets, target{ts: ts, token: token, page: page, form: "_csrf=" + url.QueryEscape(browser.csrf) + "&name=x"})
	}
	f.Fuzz(func(t *testing.T, sid string) {
		if strings.ContainsAny(sid, " \r\n?#") {
			return // not one path segment: another request line altogether
		}
		for _, tg := range targets {
			for _, r := range []struct {
				method, path string
				header       map[string]string
				body         string
			}{
				{"DELETE", "/api/sessions/" + sid, bearer(tg.token), ""},
				{"POST", "/devices/" + sid + "/signout", tg.page, tg.form},
				{"POST", "/devices/" + sid + "/rename", tg.page, tg.form},
				{"GET", "/devices/" + sid, tg.page, ""},
			} {
				if status := rawRequest(t, tg.ts.URL, r.method, r.path, r.header, r.body); status >= 500 {
					t.Fatalf("%s %q: %d", r.method, r.path, status)
				}
			}
		}
	})
}
