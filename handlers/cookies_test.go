package handlers_test

import (
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"gatehouse/handlers"
	"gatehouse/models/testdb"
	"gatehouse/services/ratelimit"
)

// TestCookiesOverHTTPS: with an https base URL every cookie is Secure and carries the __Host- prefix.
func TestCookiesOverHTTPS(t *testing.T) {
	ts := newTestServer(t, testdb.SQLite(t), func(c *handlers.Config) {
		c.BaseURL, _ = url.Parse("https://login.example.test")
	})
	ts.createUser(t, "ann@example.com")
	res := ts.newClient(t).postJSON("/auth/login", map[string]string{"email": "ann@example.com", "password": testPassword}, nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s", res.StatusCode, res.body)
	}
	if res.Header.Get("Strict-Transport-Security") == "" {
		t.Fatal("HSTS when the base URL is https")
	}
	names := map[string]bool{}
	for _, c := range res.Cookies() {
		names[c.Name] = true
		if !c.Secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" || !strings.HasPrefix(c.Name, "__Host-") {
			t.Fatalf("cookie %+v: want Secure, HttpOnly, Path=/, no Domain, __Host- prefix", c)
		}
	}
	if !names["__Host-gh_refresh"] || !names["__Host-gh_device"] {
		t.Fatalf("cookies set: %v", names)
	}
}

// TestSignInEndsTheSessionThisBrowserHeld: a browser that still held another account's refresh
// cookie does not leave that session live with nobody able to use it.
func TestSignInEndsTheSessionThisBrowserHeld(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newTestServer(t, db)
		ts.createUser(t, "ann@example.com")
		ts.createUser(t, "bob@example.com")
		browser := ts.newClient(t)
		browser.pageSignIn("ann@example.com")
		browser.apiSignIn("bob@example.com")
		if n := db.Count(t, `SELECT COUNT(*) FROM device_sessions s JOIN users u ON u.id = s.user_id WHERE u.email = 'ann@example.com' AND s.revoked_at IS NULL`); n != 0 {
			t.Fatalf("ann still has %d live sessions on a browser now signed in as bob", n)
		}
	})
}

// TestForwardedForLines: behind a trusted proxy every X-Forwarded-For line counts, so a client
// cannot choose its address (and dodge the per-IP limit) by sending a line of its own.
func TestForwardedForLines(t *testing.T) {
	ts := newTestServer(t, testdb.SQLite(t), func(c *handlers.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		c.LoginLimitIP = ratelimit.Rate{N: 2, Per: 15 * time.Minute}
	})
	c := ts.newClient(t)
	var last int
	for i := range 4 {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/auth/login", strings.NewReader(`{"email":"x@example.com","password":"wrong password 1"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Add("X-Forwarded-For", "198.51.100."+string(rune('1'+i)))
		req.Header.Add("X-Forwarded-For", "203.0.113.9")
		res, err := c.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		last = res.StatusCode
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("the fourth attempt from 203.0.113.9 answered %d, want 429", last)
	}
}

// TestErrorPageKeepsTheHeaderUsable: after a refused cross-site form, the 403 page still shows who
// is signed in, and its sign-out button carries this browser's valid CSRF token.
func TestErrorPageKeepsTheHeaderUsable(t *testing.T) {
	ts := newTestServer(t, testdb.SQLite(t))
	ts.createUser(t, "ann@example.com")
	c := ts.newClient(t)
	c.pageSignIn("ann@example.com")
	c.get("/devices")
	res := c.postForm("/devices/signout-others", url.Values{"_csrf": {"forged"}})
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("forged token: %d", res.StatusCode)
	}
	doc := res.Doc(t)
	if !strings.Contains(doc.Find("header").Text(), "ann@example.com") {
		t.Fatal("the 403 page shows who is signed in")
	}
	token, _ := doc.Find(`form[action="/logout"] input[name="_csrf"]`).Attr("value")
	if token == "" {
		t.Fatal("the header's sign-out form lacks a CSRF token")
	}
	if res := c.postForm("/logout", url.Values{"_csrf": {token}}); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login" {
		t.Fatalf("signing out from the 403 page: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
}
