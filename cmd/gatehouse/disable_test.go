package main

import (
	"net/http"
	"testing"

	"gatehouse/models/testdb"
)

// An operator disables an account from the command line, in a process of its own, while a
// server is running: the server refuses the account's access tokens at once (token rule 6),
// not when they expire, and its refresh tokens no longer work (rule 7).
func TestUserDisableReachesRunningServer(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		// Tokens live an hour here, far beyond revocationBound: a refusal within it is the
		// disable reaching the server, never the token expiring.
		srv := startServer(t, db.URL, map[string]string{"GATEHOUSE_ACCESS_TTL": "1h"})
		if r := srv.gatehouse(t, password+"\n", "user", "create", "--email", "eve@example.com", "--password-stdin"); r.code != 0 {
			t.Fatalf("user create:\n%s", r)
		}
		if r := srv.gatehouse(t, password+"\n", "user", "create", "--email", "frank@example.com", "--password-stdin"); r.code != 0 {
			t.Fatalf("user create:\n%s", r)
		}
		eve := srv.login(t, "eve@example.com", "eve-laptop-0001")
		frank := srv.login(t, "frank@example.com", "frank-laptop-01")

		// The server has seen Eve's token and holds what it knows of her session in its cache.
		for range 3 {
			if r := srv.must(t, "GET", "/api/me", "", "Authorization", "Bearer "+eve.Access); r.Status != http.StatusOK {
				t.Fatalf("GET /api/me before the disable: %s", r)
			}
		}

		if r := srv.gatehouse(t, "", "user", "disable", "--email", "eve@example.com"); r.code != 0 {
			t.Fatalf("user disable:\n%s", r)
		}

		var last reply
		eventually(t, revocationBound, "the running server refuses the disabled user's access token", func() (bool, string) {
			last = srv.must(t, "GET", "/api/me", "", "Authorization", "Bearer "+eve.Access)
			if last.Status != http.StatusOK && last.Status != http.StatusUnauthorized {
				t.Fatalf("GET /api/me after the disable: %s", last)
			}
			return last.Status == http.StatusUnauthorized, last.String()
		})
		if code := last.errorCode(); code == "" {
			t.Errorf("401 without a JSON error code: %s", last)
		}

		refreshed := srv.must(t, "POST", "/auth/refresh", "", "Cookie", "gh_refresh="+eve.Refresh, "X-Device-Id", eve.ID)
		if refreshed.Status != http.StatusUnauthorized || refreshed.errorCode() != "session_revoked" {
			t.Errorf("refresh after the disable: %s, want 401 session_revoked", refreshed)
		}
		if v, set := refreshed.cookie("gh_refresh"); !set || v != "" {
			t.Errorf("the refused refresh does not clear the refresh cookie (set %v, value %q)", set, v)
		}
		again := srv.must(t, "POST", "/auth/login", loginBody("eve@example.com", password), "X-Device-Id", eve.ID)
		if again.Status != http.StatusUnauthorized || again.errorCode() != "invalid_credentials" {
			t.Errorf("login after the disable: %s, want 401 invalid_credentials", again)
		}

		// Another account on the same server is untouched.
		if r := srv.must(t, "GET", "/api/me", "", "Authorization", "Bearer "+frank.Access); r.Status != http.StatusOK {
			t.Errorf("another user's /api/me after the disable: %s", r)
		}
	})
}
