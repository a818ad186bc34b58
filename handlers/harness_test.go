package handlers_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/gofiber/fiber/v2"

	"gatehouse/handlers"
	"gatehouse/models/testdb"
	"gatehouse/services/auth"
	"gatehouse/services/clock"
	"gatehouse/services/ratelimit"
)

// testServer is the real Fiber app on a real loopback listener, over a fresh database.
type testServer struct {
	URL   string
	db    *testdb.DB
	svc   *auth.Service
	clock *clock.Manual // shared by the service, the limiter and the handlers
}

type serverOption func(*handlers.Config)

const testPassword = "correct horse battery"

func newTestServer(t testing.TB, db *testdb.DB, opts ...serverOption) *testServer {
	t.Helper()
	return newTestServerWithAuth(t, db, nil, opts...)
}

// newTestServerWithAuth is newTestServer with the auth service's configuration adjusted.
func newTestServerWithAuth(t testing.TB, db *testdb.DB, authOpt func(*auth.Config), opts ...serverOption) *testServer {
	t.Helper()
	return newTestServerWithDeps(t, db, authOpt, nil, opts...)
}

// newTestServerWithDeps is newTestServerWithAuth with the collaborators adjusted too (metrics,
// an observer of the auth service).
func newTestServerWithDeps(t testing.TB, db *testdb.DB, authOpt func(*auth.Config), depsOpt func(*handlers.Deps, *auth.Deps), opts ...serverOption) *testServer {
	t.Helper()
	return newTestServerWithService(t, db, authOpt, depsOpt, nil, opts...)
}

// newTestServerWithService is newTestServerWithDeps with svcOpt run on the auth service once it is
// built and before the server answers anything (SetMailer: no request may read the mailer first).
func newTestServerWithService(t testing.TB, db *testdb.DB, authOpt func(*auth.Config), depsOpt func(*handlers.Deps, *auth.Deps), svcOpt func(*auth.Service), opts ...serverOption) *testServer {
	t.Helper()
	c := clock.NewManual(time.Now().UTC())
	keys, err := auth.OpenKeyRing(t.TempDir(), rand.Reader, c.Now())
	if err != nil {
		t.Fatal(err)
	}
	pw, err := auth.NewPasswords(auth.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1}, rand.Reader, 4, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base, _ := url.Parse("http://" + ln.Addr().String())
	authCfg := auth.Config{
		Issuer: base.String(), AccessTTL: 10 * time.Minute, RefreshIdleTTL: 336 * time.Hour,
		SessionMaxAge: 720 * time.Hour, RefreshGrace: 10 * time.Second,
	}
	if authOpt != nil {
		authOpt(&authCfg)
	}
	authDeps := auth.Deps{Store: db.Store, Keys: keys, Passwords: pw, Now: c.Now}
	deps := handlers.Deps{Limiter: ratelimit.NewMemory(c.Now), Now: c.Now, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if depsOpt != nil {
		depsOpt(&deps, &authDeps)
	}
	svc := auth.New(authCfg, authDeps)
	if svcOpt != nil {
		svcOpt(svc)
	}
	deps.Auth = svc
	cfg := handlers.Config{
		BaseURL: base, AppOrigins: []string{"http://app.example.test"}, SignupEnabled: true, BodyLimit: 64 << 10,
		LoginLimitAccount: ratelimit.Rate{N: 10, Per: 15 * time.Minute}, LoginLimitIP: ratelimit.Rate{N: 100, Per: 15 * time.Minute},
	}
	for _, o := range opts {
		o(&cfg)
	}
	app := handlers.New(cfg, deps, keys.CSRFKey())
	go app.Listener(ln)
	t.Cleanup(func() { app.ShutdownWithTimeout(5 * time.Second); svc.Wait() })
	return &testServer{URL: base.String(), db: db, svc: svc, clock: c}
}

func (ts *testServer) createUser(t testing.TB, email string) {
	t.Helper()
	if _, err := ts.svc.CreateUser(context.Background(), email, "Test User", testPassword); err != nil {
		t.Fatal(err)
	}
}

// client is one device: its own cookie jar, redirects not followed so tests see them.
type client struct {
	t    testing.TB
	ts   *testServer
	http *http.Client
	csrf string
}

func (ts *testServer) newClient(t testing.TB) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, ts: ts, http: &http.Client{
		Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type response struct {
	*http.Response
	body []byte
}

func (r *response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %q", r.body)
	}
	return m
}

func (r *response) Doc(t testing.TB) *goquery.Document {
	t.Helper()
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func (r *response) cookie(name string) *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (c *client) do(method, path string, body io.Reader, header map[string]string) *response {
	c.t.Helper()
	req, err := http.NewRequest(method, c.ts.URL+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := &response{Response: res, body: b}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		if doc, err := goquery.NewDocumentFromReader(bytes.NewReader(b)); err == nil {
			if v, ok := doc.Find(`input[name="_csrf"]`).First().Attr("value"); ok {
				c.csrf = v
			}
		}
	}
	return r
}

func (c *client) get(path string) *response { return c.do(http.MethodGet, path, nil, nil) }

func (c *client) postJSON(path string, v any, header map[string]string) *response {
	b, _ := json.Marshal(v)
	h := map[string]string{"Content-Type": "application/json"}
	for k, val := range header {
		h[k] = val
	}
	return c.do(http.MethodPost, path, bytes.NewReader(b), h)
}

// postForm posts a form with the CSRF token of the last page this client loaded.
func (c *client) postForm(path string, values url.Values) *response {
	if values == nil {
		values = url.Values{}
	}
	if values.Get("_csrf") == "" && c.csrf != "" {
		values.Set("_csrf", c.csrf)
	}
	return c.do(http.MethodPost, path, strings.NewReader(values.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
}

// signIn signs in through the JSON API and returns the access token.
func (c *client) apiSignIn(email string) string {
	c.t.Helper()
	res := c.postJSON("/auth/login", map[string]string{"email": email, "password": testPassword}, nil)
	if res.StatusCode != fiber.StatusOK {
		c.t.Fatalf("login: %d %s", res.StatusCode, res.body)
	}
	return res.JSON(c.t)["access_token"].(string)
}

// pageSignIn signs in through the sign-in form.
func (c *client) pageSignIn(email string) {
	c.t.Helper()
	if res := c.get("/login"); res.StatusCode == fiber.StatusSeeOther || res.Request.URL.Path != "/login" {
		// Signed in already, so the form is not shown: as after the session cookies expire,
		// this browser keeps only its device and CSRF cookies, and signs in again.
		c.deleteCookie("gh_access")
		c.deleteCookie("gh_refresh")
		c.get("/login")
	}
	res := c.postForm("/login", url.Values{"email": {email}, "password": {testPassword}})
	if res.StatusCode != fiber.StatusSeeOther {
		c.t.Fatalf("sign in: %d %s", res.StatusCode, res.body)
	}
}

func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

func (c *client) cookieValue(name string) string {
	u, _ := url.Parse(c.ts.URL)
	for _, ck := range c.http.Jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

func (c *client) setCookie(name, value string) {
	u, _ := url.Parse(c.ts.URL)
	c.http.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}
