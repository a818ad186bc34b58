package handlers_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/handlers"
	"gatehouse/models/testdb"
	"gatehouse/services/auth"
)

func TestAPILogin(t *testing.T) {
	cases := []struct {
		name       string
		body       string
		header     map[string]string
		wantStatus int
		wantError  string
	}{
		{"good", `{"email":"Ann@Example.com ","password":"` + testPassword + `","device_name":"CLI"}`, nil, 200, ""},
		{"wrong password", `{"email":"ann@example.com","password":"wrong password!"}`, nil, 401, "invalid_credentials"},
		{"unknown email", `{"email":"nobody@example.com","password":"` + testPassword + `"}`, nil, 401, "invalid_credentials"},
		{"not an email", `{"email":"nope","password":"` + testPassword + `"}`, nil, 401, "invalid_credentials"},
		{"malformed JSON", `{"email":`, nil, 400, "invalid_request"},
		{"not an object", `[1,2]`, nil, 400, "invalid_request"},
		{"trailing garbage", `{"email":"a@b.co","password":"x"} x`, nil, 400, "invalid_request"},
		{"device name too long", `{"email":"ann@example.com","password":"` + testPassword + `","device_name":"` + strings.Repeat("x", 65) + `"}`, nil, 400, "invalid_request"},
		{"bad device id", `{"email":"ann@example.com","password":"` + testPassword + `"}`, map[string]string{"X-Device-Id": "<bad>"}, 400, "invalid_request"},
		{"foreign origin", `{"email":"ann@example.com","password":"` + testPassword + `"}`, map[string]string{"Origin": "http://evil.test"}, 403, "forbidden"},
		{"compressed body is not inflated", gzipped(`{"email":"ann@example.com","password":"` + testPassword + `"}`), map[string]string{"Content-Encoding": "gzip"}, 415, "unsupported_encoding"},
		{"body over the limit", `{"email":"` + strings.Repeat("a", 70<<10) + `"}`, nil, 413, "payload_too_large"},
	}
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newTestServer(t, db)
		ts.createUser(t, "ann@example.com")
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := db.Count(t, "SELECT COUNT(*) FROM device_sessions")
				h := map[string]string{"Content-Type": "application/json"}
				for k, v := range tc.header {
					h[k] = v
				}
				res := ts.newClient(t).do(http.MethodPost, "/auth/login", strings.NewReader(tc.body), h)
				if res.StatusCode != tc.wantStatus {
					t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.wantStatus, res.body)
				}
				after := db.Count(t, "SELECT COUNT(*) FROM device_sessions")
				if tc.wantError != "" {
					body := res.JSON(t)
					if body["error"] != tc.wantError || body["message"] == "" {
						t.Fatalf("body %v, want error %q with a message", body, tc.wantError)
					}
					if after != before {
						t.Fatal("a failed login changed rows")
					}
					return
				}
				body := res.JSON(t)
				if body["token_type"] != "Bearer" || body["access_token"] == "" || body["expires_in"].(float64) != 600 {
					t.Fatalf("token body %v", body)
				}
				c := res.cookie("gh_refresh")
				if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure || c.MaxAge != 336*3600 {
					t.Fatalf("refresh cookie attributes: %+v", c)
				}
				if after != before+1 {
					t.Fatal("login must create one session")
				}
			})
		}
	})
}

// TestUnknownAndDisabledLoginsLookTheSame: a sign-in to an unknown email, to a disabled account
// (with its right password or a wrong one) and to a live account with a wrong password get the
// same answer: status, body and headers, all but the request's own id and date. Nor does the work
// before the answer tell them apart (the contract: "not by message or by timing"), checked
// without a stopwatch: the test holds the one argon2 slot of the server, and then every one of
// them waits for it and answers 503 alike; had one skipped the password check a live account
// gets (a disabled account refused early, say), it would answer 401 at once.
func TestUnknownAndDisabledLoginsLookTheSame(t *testing.T) {
	attempts := []struct{ name, email, password string }{
		{"unknown email", "zed@example.com", testPassword},
		{"disabled account", "gone@example.com", testPassword},
		{"disabled account, wrong password", "gone@example.com", "not the password"},
		{"wrong password", "ann@example.com", "not the password"},
	}
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		salts := &holdableReader{}
		var passwords *auth.Passwords
		ts := newTestServerWithDeps(t, db, nil, func(_ *handlers.Deps, d *auth.Deps) {
			var err error
			passwords, err = auth.NewPasswords(auth.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1}, salts, 1, 100*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			d.Passwords = passwords
		})
		ts.createUser(t, "ann@example.com")
		ts.createUser(t, "gone@example.com")
		if err := ts.svc.DisableUser(context.Background(), "gone@example.com"); err != nil {
			t.Fatal(err)
		}
		answers := func() []*response {
			var list []*response
			for _, a := range attempts {
				body := map[string]string{"email": a.email, "password": a.password}
				list = append(list, ts.newClient(t).postJSON("/auth/login", body, nil))
			}
			return list
		}
		expectAlike := func(phase string, list []*response, status int, code string) {
			t.Helper()
			first := list[0]
			if first.StatusCode != status || first.JSON(t)["error"] != code {
				t.Fatalf("%s, %s: %d %s, want %d %s", phase, attempts[0].name, first.StatusCode, first.body, status, code)
			}
			for i, res := range list[1:] {
				name := attempts[i+1].name
				if res.StatusCode != first.StatusCode || !bytes.Equal(res.body, first.body) {
					t.Errorf("%s: %s answers %d %s, %s %d %s", phase, name, res.StatusCode, res.body, attempts[0].name, first.StatusCode, first.body)
				}
				if got, want := comparableHeader(t, res), comparableHeader(t, first); !reflect.DeepEqual(got, want) {
					t.Errorf("%s: the headers of %s differ from those of %s:\n%v\n%v", phase, name, attempts[0].name, got, want)
				}
			}
		}

		// Hold the one argon2 slot: a password hash takes it, then waits for its salt.
		held, release := salts.holdNextRead()
		hashed := make(chan error, 1)
		go func() {
			_, err := passwords.Hash(context.Background(), "a new password of someone")
			hashed <- err
		}()
		<-held
		expectAlike("with the password check busy", answers(), http.StatusServiceUnavailable, "unavailable")
		release()
		if err := <-hashed; err != nil {
			t.Fatal(err)
		}
		expectAlike("with the password check free", answers(), http.StatusUnauthorized, "invalid_credentials")
	})
}

// comparableHeader is a response's header without what differs in every response (its request
// id, which must be there, and its date).
func comparableHeader(t *testing.T, res *response) http.Header {
	t.Helper()
	h := res.Header.Clone()
	if h.Get("X-Request-Id") == "" {
		t.Error("a response without X-Request-Id")
	}
	h.Del("X-Request-Id")
	h.Del("Date")
	return h
}

// holdableReader is crypto/rand, but its next read after holdNextRead waits until release: the
// password hash that reads its salt then keeps its argon2 slot.
type holdableReader struct {
	mu      sync.Mutex
	held    chan struct{}
	release chan struct{}
}

// holdNextRead makes the next read wait; held is closed once a read waits.
func (r *holdableReader) holdNextRead() (held <-chan struct{}, release func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	waiting, hold := make(chan struct{}), make(chan struct{})
	r.held, r.release = waiting, hold
	return waiting, func() { close(hold) }
}

func (r *holdableReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	held, release := r.held, r.release
	r.held, r.release = nil, nil
	r.mu.Unlock()
	if held != nil {
		close(held)
		<-release
	}
	return rand.Read(p)
}

func TestAPIRefresh(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newTestServer(t, db)
		ts.createUser(t, "ann@example.com")

		t.Run("rotates the cookie", func(t *testing.T) {
			c := ts.newClient(t)
			c.apiSignIn("ann@example.com")
			old := c.cookieValue("gh_refresh")
			res := c.do(http.MethodPost, "/auth/refresh", nil, nil)
			if res.StatusCode != 200 || res.JSON(t)["access_token"] == "" {
				t.Fatalf("refresh: %d %s", res.StatusCode, res.body)
			}
			if now := c.cookieValue("gh_refresh"); now == "" || now == old {
				t.Fatal("the refresh cookie must be replaced")
			}
			if res.Header.Get("Cache-Control") != "no-store" {
				t.Fatal("token answers must not be cached")
			}
		})
		t.Run("replay after the successor was used", func(t *testing.T) {
			c := ts.newClient(t)
			c.apiSignIn("ann@example.com")
			stolen := c.cookieValue("gh_refresh")
			c.do(http.MethodPost, "/auth/refresh", nil, nil)
			c.do(http.MethodPost, "/auth/refresh", nil, nil)
			thief := ts.newClient(t)
			thief.setCookie("gh_refresh", stolen)
			res := thief.do(http.MethodPost, "/auth/refresh", nil, nil)
			if res.StatusCode != 401 || res.JSON(t)["error"] != "token_reused" {
				t.Fatalf("replay: %d %s", res.StatusCode, res.body)
			}
			if ck := res.cookie("gh_refresh"); ck == nil || ck.MaxAge >= 0 && ck.Value != "" {
				t.Fatalf("a failed refresh clears the cookie: %+v", ck)
			}
			res = c.do(http.MethodPost, "/auth/refresh", nil, nil)
			if res.StatusCode != 401 || res.JSON(t)["error"] != "session_revoked" {
				t.Fatalf("the victim's family is revoked: %d %s", res.StatusCode, res.body)
			}
		})
		failures := []struct {
			name, cookie, want string
		}{
			{"no cookie", "", "invalid_token"},
			{"garbage", "garbage", "invalid_token"},
			{"truncated", "ghr_AAAA", "invalid_token"},
			{"unknown", "ghr_" + strings.Repeat("A", 43), "invalid_token"},
		}
		for _, tc := range failures {
			t.Run(tc.name, func(t *testing.T) {
				c := ts.newClient(t)
				if tc.cookie != "" {
					c.setCookie("gh_refresh", tc.cookie)
				}
				res := c.do(http.MethodPost, "/auth/refresh", nil, nil)
				if res.StatusCode != 401 || res.JSON(t)["error"] != tc.want {
					t.Fatalf("%d %s, want 401 %s", res.StatusCode, res.body, tc.want)
				}
			})
		}
		t.Run("foreign origin changes nothing", func(t *testing.T) {
			c := ts.newClient(t)
			c.apiSignIn("ann@example.com")
			old := c.cookieValue("gh_refresh")
			res := c.do(http.MethodPost, "/auth/refresh", nil, map[string]string{"Origin": "http://evil.test"})
			if res.StatusCode != 403 || res.JSON(t)["error"] != "forbidden" {
				t.Fatalf("%d %s", res.StatusCode, res.body)
			}
			if now := c.cookieValue("gh_refresh"); now != old {
				t.Fatal("a refused request must leave the refresh cookie alone")
			}
			if res := c.do(http.MethodPost, "/auth/refresh", nil, nil); res.StatusCode != 200 {
				t.Fatalf("the untouched token still refreshes: %d %s", res.StatusCode, res.body)
			}
		})
		t.Run("app origin gets CORS with credentials", func(t *testing.T) {
			c := ts.newClient(t)
			c.apiSignIn("ann@example.com")
			res := c.do(http.MethodPost, "/auth/refresh", nil, map[string]string{"Origin": "http://app.example.test"})
			if res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != "http://app.example.test" || res.Header.Get("Access-Control-Allow-Credentials") != "true" {
				t.Fatalf("%d %v", res.StatusCode, res.Header)
			}
			pre := c.do(http.MethodOptions, "/auth/refresh", nil, map[string]string{"Origin": "http://evil.test", "Access-Control-Request-Method": "POST"})
			if pre.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Fatal("no CORS grant for a foreign origin")
			}
		})
	})
}

func TestAPILogout(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newTestServer(t, db)
		ts.createUser(t, "ann@example.com")
		c := ts.newClient(t)
		access := c.apiSignIn("ann@example.com")
		res := c.do(http.MethodPost, "/auth/logout", nil, nil)
		if res.StatusCode != 204 || c.cookieValue("gh_refresh") != "" {
			t.Fatalf("logout: %d, cookie %q", res.StatusCode, c.cookieValue("gh_refresh"))
		}
		if res := c.do(http.MethodGet, "/api/me", nil, bearer(access)); res.StatusCode != 401 {
			t.Fatalf("the access token dies with its session at once: %d", res.StatusCode)
		}
		if res := ts.newClient(t).do(http.MethodPost, "/auth/logout", nil, nil); res.StatusCode != 204 {
			t.Fatalf("logout without a cookie: %d", res.StatusCode)
		}
	})
}

func TestAPIBearer(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newTestServer(t, db)
		ts.createUser(t, "ann@example.com")
		c := ts.newClient(t)
		access := c.apiSignIn("ann@example.com")

		res := c.do(http.MethodGet, "/api/me", nil, bearer(access))
		me := res.JSON(t)
		if res.StatusCode != 200 || me["email"] != "ann@example.com" || me["session_id"] == "" || me["display_name"] != "Test User" {
			t.Fatalf("me: %d %v", res.StatusCode, me)
		}

		parts := strings.Split(access, ".")
		none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var claims map[string]any
		json.Unmarshal(payload, &claims)
		claims["ver"] = 99
		tamperedPayload, _ := json.Marshal(claims)
		tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(tamperedPayload) + "." + parts[2]
		other := newTestServer(t, testdb.SQLite(t)) // signed by another key
		other.createUser(t, "ann@example.com")
		foreign := other.newClient(t).apiSignIn("ann@example.com")

		for name, h := range map[string]map[string]string{
			"none":         nil,
			"not bearer":   {"Authorization": "Basic " + access},
			"garbage":      bearer("garbage"),
			"truncated":    bearer(access[:len(access)-10]),
			"alg none":     bearer(none),
			"tampered":     bearer(tampered),
			"another key":  bearer(foreign),
			"empty bearer": {"Authorization": "Bearer "},
		} {
			t.Run(name, func(t *testing.T) {
				res := c.do(http.MethodGet, "/api/me", nil, h)
				if res.StatusCode != 401 || res.JSON(t)["error"] != "invalid_token" {
					t.Fatalf("%d %s", res.StatusCode, res.body)
				}
			})
		}
	})
}

func TestAPISessions(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newTestServer(t, db)
		ts.createUser(t, "ann@example.com")
		ts.createUser(t, "bob@example.com")
		laptop, phone, bob := ts.newClient(t), ts.newClient(t), ts.newClient(t)
		laptopToken, phoneToken, bobToken := laptop.apiSignIn("ann@example.com"), phone.apiSignIn("ann@example.com"), bob.apiSignIn("bob@example.com")

		res := laptop.do(http.MethodGet, "/api/sessions", nil, bearer(laptopToken))
		var list []map[string]any
		json.Unmarshal(res.body, &list)
		if res.StatusCode != 200 || len(list) != 2 {
			t.Fatalf("sessions: %d %s", res.StatusCode, res.body)
		}
		var current, phoneID string
		for _, s := range list {
			for _, k := range []string{"id", "device_name", "browser", "os", "ip", "created_at", "last_used_at", "current"} {
				if _, ok := s[k]; !ok {
					t.Fatalf("session lacks %q: %v", k, s)
				}
			}
			if s["current"] == true {
				current = s["id"].(string)
			} else {
				phoneID = s["id"].(string)
			}
		}
		if current == "" || phoneID == "" {
			t.Fatalf("exactly one current session expected: %v", list)
		}

		if res := bob.do(http.MethodDelete, "/api/sessions/"+phoneID, nil, bearer(bobToken)); res.StatusCode != 404 || res.JSON(t)["error"] != "not_found" {
			t.Fatalf("another user's session: %d %s", res.StatusCode, res.body)
		}
		if res := laptop.do(http.MethodDelete, "/api/sessions/nope", nil, bearer(laptopToken)); res.StatusCode != 404 {
			t.Fatalf("unknown session: %d", res.StatusCode)
		}
		if res := laptop.do(http.MethodDelete, "/api/sessions/"+phoneID, nil, bearer(laptopToken)); res.StatusCode != 204 {
			t.Fatalf("delete: %d %s", res.StatusCode, res.body)
		}
		if res := phone.do(http.MethodGet, "/api/me", nil, bearer(phoneToken)); res.StatusCode != 401 {
			t.Fatalf("the signed-out device's token must die at once: %d", res.StatusCode)
		}
		if res := laptop.do(http.MethodDelete, "/api/sessions/"+phoneID, nil, bearer(laptopToken)); res.StatusCode != 404 {
			t.Fatalf("deleting twice: %d", res.StatusCode)
		}

		phoneToken = phone.apiSignIn("ann@example.com")
		if res := laptop.do(http.MethodPost, "/api/sessions/revoke-others", nil, bearer(laptopToken)); res.StatusCode != 204 {
			t.Fatalf("revoke-others: %d", res.StatusCode)
		}
		if res := phone.do(http.MethodGet, "/api/me", nil, bearer(phoneToken)); res.StatusCode != 401 {
			t.Fatal("revoke-others must sign the phone out")
		}
		if res := laptop.do(http.MethodGet, "/api/me", nil, bearer(laptopToken)); res.StatusCode != 200 {
			t.Fatal("revoke-others keeps this device")
		}

		if res := laptop.do(http.MethodPost, "/api/sessions/revoke-all", nil, bearer(laptopToken)); res.StatusCode != 204 {
			t.Fatalf("revoke-all: %d", res.StatusCode)
		}
		if res := laptop.do(http.MethodGet, "/api/me", nil, bearer(laptopToken)); res.StatusCode != 401 {
			t.Fatal("revoke-all signs this device out too")
		}
		if res := bob.do(http.MethodGet, "/api/me", nil, bearer(bobToken)); res.StatusCode != 200 {
			t.Fatal("another user is untouched")
		}
	})
}

func TestMetaRoutes(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ts := newTestServer(t, db)
		c := ts.newClient(t)
		if res := c.get("/healthz"); res.StatusCode != 200 {
			t.Fatalf("healthz %d", res.StatusCode)
		}
		if res := c.get("/readyz"); res.StatusCode != 200 {
			t.Fatalf("readyz %d", res.StatusCode)
		}
		res := c.get("/.well-known/jwks.json")
		var set struct {
			Keys []map[string]string `json:"keys"`
		}
		json.Unmarshal(res.body, &set)
		if res.StatusCode != 200 || len(set.Keys) != 1 || set.Keys[0]["kty"] != "OKP" || set.Keys[0]["crv"] != "Ed25519" || set.Keys[0]["kid"] == "" {
			t.Fatalf("jwks: %d %s", res.StatusCode, res.body)
		}
		if res := c.get("/api/nothing-here"); res.StatusCode != 401 {
			t.Fatalf("unknown API route without a token: %d", res.StatusCode)
		}
		if res := c.get("/no-such-page"); res.StatusCode != 404 {
			t.Fatalf("unknown page: %d", res.StatusCode)
		}
	})
}

func gzipped(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}
