package main

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"gatehouse/models/testdb"
)

// The server's log holds no password, token or cookie value, whatever happens: a sign-in, several
// refreshes, bearer requests, failed sign-ins, forged tokens, a token in a query string, a
// sign-out. Every request line carries the request id the response names in X-Request-Id.
func TestLogsHoldNoSecrets(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		srv := startServer(t, db.URL, map[string]string{"GATEHOUSE_LOG_FORMAT": "json"})
		const email = "hal@example.com"
		const wrongPassword = "not-hals-password-1234"
		secrets := map[string]string{"password": password, "wrong password": wrongPassword}
		var answers []reply
		keep := func(r reply) reply {
			answers = append(answers, r)
			for _, c := range r.Cookies {
				if c.Value != "" {
					secrets["cookie "+c.Name+"="+c.Value] = c.Value
				}
			}
			if a := r.accessToken(); a != "" {
				secrets["access token "+a] = a
				if parts := strings.Split(a, "."); len(parts) == 3 {
					secrets["access token signature "+parts[2]] = parts[2]
				}
			}
			return r
		}
		refreshSecret := func(token string) {
			secrets["refresh token "+token] = token
			secrets["refresh token secret "+token] = strings.TrimPrefix(token, "ghr_")
		}

		cr := srv.gatehouse(t, password+"\n", "user", "create", "--email", email, "--password-stdin")
		if cr.code != 0 || strings.Contains(cr.stdout+cr.stderr, password) {
			t.Fatalf("user create:\n%s", cr)
		}

		// A browser-like app: no X-Device-Id, so the server gives it a device cookie.
		login := keep(srv.must(t, "POST", "/auth/login", loginBody(email, password)))
		refresh, _ := login.cookie("gh_refresh")
		deviceCookie, _ := login.cookie("gh_device")
		if login.Status != http.StatusOK || refresh == "" || deviceCookie == "" {
			t.Fatalf("login: %s", login)
		}
		refreshSecret(refresh)
		access := login.accessToken()
		for range 4 {
			r := keep(srv.must(t, "POST", "/auth/refresh", "", "Cookie", "gh_refresh="+refresh+"; gh_device="+deviceCookie))
			next, _ := r.cookie("gh_refresh")
			if r.Status != http.StatusOK || next == "" {
				t.Fatalf("refresh: %s", r)
			}
			refresh, access = next, r.accessToken()
			refreshSecret(refresh)
		}
		if r := keep(srv.must(t, "GET", "/api/me", "", "Authorization", "Bearer "+access)); r.Status != http.StatusOK {
			t.Fatalf("GET /api/me: %s", r)
		}
		keep(srv.must(t, "GET", "/api/sessions", "", "Authorization", "Bearer "+access))
		keep(srv.must(t, "GET", "/api/me?access_token="+access+"&refresh_token="+refresh, ""))

		// Failures: a wrong password, an unknown email, forged tokens of both kinds.
		if r := keep(srv.must(t, "POST", "/auth/login", loginBody(email, wrongPassword))); r.Status != http.StatusUnauthorized {
			t.Errorf("login with a wrong password: %s", r)
		}
		keep(srv.must(t, "POST", "/auth/login", loginBody("nobody@example.com", wrongPassword)))
		forgedRefresh := "ghr_" + base64.RawURLEncoding.EncodeToString([]byte(rand.Text() + rand.Text())[:32])
		refreshSecret(forgedRefresh)
		if r := keep(srv.must(t, "POST", "/auth/refresh", "", "Cookie", "gh_refresh="+forgedRefresh)); r.Status != http.StatusUnauthorized {
			t.Errorf("refresh with a forged token: %s", r)
		}
		forgedAccess := access[:strings.LastIndex(access, ".")+1] + base64.RawURLEncoding.EncodeToString([]byte(rand.Text()+rand.Text()))
		secrets["forged access token"] = forgedAccess
		if r := keep(srv.must(t, "GET", "/api/me", "", "Authorization", "Bearer "+forgedAccess)); r.Status != http.StatusUnauthorized {
			t.Errorf("GET /api/me with a forged token: %s", r)
		}
		malformed := keep(srv.must(t, "POST", "/auth/login", `{"email":"`+email+`","password":"`+password+`"`))
		if malformed.Status != http.StatusBadRequest {
			t.Errorf("login with truncated JSON: %s", malformed)
		}

		// A well-formed request id from upstream is kept and echoed.
		traced := keep(srv.must(t, "GET", "/api/me", "", "Authorization", "Bearer "+access, "X-Request-Id", "trace-0001.abc"))
		if traced.RequestID != "trace-0001.abc" {
			t.Errorf("X-Request-Id %q, want the one the client sent", traced.RequestID)
		}
		if r := keep(srv.must(t, "POST", "/auth/logout", "", "Cookie", "gh_refresh="+refresh+"; gh_device="+deviceCookie)); r.Status != http.StatusNoContent {
			t.Errorf("logout: %s", r)
		}

		if err := srv.stop(20 * time.Second); err != nil {
			t.Fatal(err)
		}
		loggedIDs := checkLog(t, srv.LogPath, secrets)
		for _, r := range answers {
			if r.RequestID == "" {
				t.Errorf("an answer without X-Request-Id: %s", r)
			} else if !loggedIDs[r.RequestID] {
				t.Errorf("no request line with request_id %q (answer %d)", r.RequestID, r.Status)
			}
		}
	})
}

// checkLog reads a JSON log: every line is a JSON object, none holds a secret, and every request
// line has a request_id. It returns the request ids it saw.
func checkLog(t *testing.T, path string, secrets map[string]string) map[string]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ids := map[string]bool{}
	requests := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		for what, s := range secrets {
			if s != "" && strings.Contains(line, s) {
				t.Errorf("log line %d holds the %s:\n%s", n, what, line)
			}
		}
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Errorf("log line %d is not JSON: %q", n, line)
			continue
		}
		if entry["msg"] != "request" {
			continue
		}
		requests++
		id, _ := entry["request_id"].(string)
		if id == "" {
			t.Errorf("log line %d is a request line without request_id:\n%s", n, line)
		}
		ids[id] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if requests == 0 {
		t.Error("the log has no request lines")
	}
	return ids
}
