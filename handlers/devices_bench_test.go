package handlers_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"testing"
	"time"

	"gatehouse/handlers"
	"gatehouse/models/testdb"
	"gatehouse/services/ratelimit"
)

// BenchmarkDevicesPage is GET /devices with a valid access cookie, in process over HTTP, for a
// user with 10 devices and 20 events, as the page cells of make bench: for profiling the page
// (go test -run XXX -bench DevicesPage -cpuprofile cpu.out ./handlers/). On SQLite, and on
// PostgreSQL with GATEHOUSE_TEST_POSTGRES.
func BenchmarkDevicesPage(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchDevicesPage(b, testdb.SQLite(b)) })
	if testdb.PostgresURL(b) != "" {
		b.Run("postgres", func(b *testing.B) { benchDevicesPage(b, testdb.Postgres(b)) })
	}
}

func benchDevicesPage(b *testing.B, db *testdb.DB) {
	ts := newTestServer(b, db, func(c *handlers.Config) {
		c.LoginLimitAccount = ratelimit.Rate{N: 1000, Per: time.Minute}
	})
	const ann = "ann@example.com"
	ts.createUser(b, ann)
	agents := []string{firefoxMac, chromeAndroid}
	var last *client
	for i := range 10 { // 10 devices, each a sign-in event
		last = ts.newClient(b)
		last.http.Transport = userAgent{ua: agents[i%2], next: http.DefaultTransport}
		last.pageSignIn(ann)
	}
	for range 10 { // and 10 wrong passwords
		c := ts.newClient(b)
		c.get("/login")
		c.postForm("/login", url.Values{"email": {ann}, "password": {"not the password"}})
	}
	if n := ts.db.Count(b, "SELECT COUNT(*) FROM security_events"); n < 20 {
		b.Fatalf("%d events, want 20 or more", n)
	}
	base, _ := url.Parse(ts.URL)
	jar, _ := cookiejar.New(nil)
	jar.SetCookies(base, last.http.Jar.Cookies(base))
	client := &http.Client{Jar: jar, Transport: &http.Transport{MaxIdleConnsPerHost: 64},
		// A redirect (to sign-in) is a failure, not a page to time.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := client.Get(ts.URL + "/devices")
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Errorf("GET /devices: %d %s", res.StatusCode, res.Header.Get("Location"))
				return
			}
		}
	})
}
