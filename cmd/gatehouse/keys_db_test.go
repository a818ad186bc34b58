package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"gatehouse/models/testdb"
)

// jwksKids lists the key ids an instance publishes.
func jwksKids(t *testing.T, srv *server) []string {
	t.Helper()
	r := srv.must(t, "GET", "/.well-known/jwks.json", "")
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(r.Body), &set); err != nil {
		t.Fatalf("JWKS: %v (%s)", err, r)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

// TestKeysInPostgres: two instances that share only PostgreSQL and the master key (each has its
// own, unused, key directory) verify each other's tokens; a rotation from the command line is
// published by both at once (the database notifies them), and the rest of the flow works.
func TestKeysInPostgres(t *testing.T) {
	db := testdb.Postgres(t)
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	// Instances behind one load balancer share the base URL (the tokens' issuer) and the master key.
	env := map[string]string{"GATEHOUSE_MASTER_KEY": base64.StdEncoding.EncodeToString(raw), "GATEHOUSE_ACCESS_TTL": "1h",
		"GATEHOUSE_BASE_URL": "http://127.0.0.1:8080"}
	a := startServer(t, db.URL, env)
	b := startServer(t, db.URL, env)
	if ka, kb := jwksKids(t, a), jwksKids(t, b); len(ka) != 1 || strings.Join(ka, ",") != strings.Join(kb, ",") {
		t.Fatalf("the instances publish %v and %v, want the same one key", ka, kb)
	}
	if r := a.gatehouse(t, password+"\n", "user", "create", "--email", "kim@example.com", "--password-stdin"); r.code != 0 {
		t.Fatalf("user create:\n%s", r)
	}
	kim := a.login(t, "kim@example.com", "kim-laptop-0001")
	if r := b.must(t, "GET", "/api/me", "", "Authorization", "Bearer "+kim.Access); r.Status != http.StatusOK {
		t.Fatalf("a token of instance a on instance b: %s", r)
	}
	// The refresh token rotates on the other instance: the server secret is shared too.
	if r := b.must(t, "POST", "/auth/refresh", "", "Cookie", "gh_refresh="+kim.Refresh, "X-Device-Id", kim.ID); r.Status != http.StatusOK {
		t.Fatalf("refresh on instance b: %s", r)
	}

	r := a.gatehouse(t, "", "keys", "rotate", "--master-key", env["GATEHOUSE_MASTER_KEY"])
	if r.code != 0 || !strings.Contains(r.stdout, "published on every instance") {
		t.Fatalf("keys rotate:\n%s", r)
	}
	for _, srv := range []*server{a, b} {
		eventually(t, 5*time.Second, "the rotated key is published by every instance", func() (bool, string) {
			kids := jwksKids(t, srv)
			return len(kids) == 2, strings.Join(kids, ",")
		})
	}
	// It signs only from its activation, a minute on: a sign-in now still uses the first key,
	// which every instance verifies.
	again := b.login(t, "kim@example.com", "kim-phone-00001")
	if r := a.must(t, "GET", "/api/me", "", "Authorization", "Bearer "+again.Access); r.Status != http.StatusOK {
		t.Fatalf("a token of instance b on instance a after the rotation: %s", r)
	}

	// With the wrong master key a command (or an instance) refuses to go on, saying why.
	wrong := make([]byte, 32)
	rand.Read(wrong)
	res := a.gatehouse(t, "", "user", "signout", "--email", "kim@example.com", "--master-key", base64.StdEncoding.EncodeToString(wrong))
	if res.code == 0 || !strings.Contains(res.stderr, "master key") {
		t.Fatalf("a command with another master key:\n%s", res)
	}
}

// TestKeyDirectoryMovesIntoPostgres: one command moves a running deployment's key directory into
// the database; an instance started with the master key then honours the tokens issued before.
func TestKeyDirectoryMovesIntoPostgres(t *testing.T) {
	db := testdb.Postgres(t)
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	master := base64.StdEncoding.EncodeToString(raw)
	base := map[string]string{"GATEHOUSE_ACCESS_TTL": "1h", "GATEHOUSE_BASE_URL": "http://127.0.0.1:8080"}
	old := startServer(t, db.URL, base)
	if r := old.gatehouse(t, password+"\n", "user", "create", "--email", "lou@example.com", "--password-stdin"); r.code != 0 {
		t.Fatalf("user create:\n%s", r)
	}
	lou := old.login(t, "lou@example.com", "lou-laptop-0001")

	r := old.gatehouse(t, "", "keys", "import", "--master-key", master)
	if r.code != 0 || !strings.Contains(r.stdout, "1 signing keys") {
		t.Fatalf("keys import:\n%s", r)
	}
	withMaster := map[string]string{"GATEHOUSE_MASTER_KEY": master}
	for k, v := range base {
		withMaster[k] = v
	}
	moved := startServer(t, db.URL, withMaster) // its own, empty key directory
	if r := moved.must(t, "GET", "/api/me", "", "Authorization", "Bearer "+lou.Access); r.Status != http.StatusOK {
		t.Fatalf("an access token from before the move: %s", r)
	}
	if r := moved.must(t, "POST", "/auth/refresh", "", "Cookie", "gh_refresh="+lou.Refresh, "X-Device-Id", lou.ID); r.Status != http.StatusOK {
		t.Fatalf("a refresh token from before the move: %s", r)
	}
}
