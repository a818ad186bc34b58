// PgBouncer in transaction pooling, in front of the real PostgreSQL, with the real binary: the
// configuration of docs/deploy/pgbouncer.ini, started by the harness on a free port. These tests
// need pgbouncer on the PATH (apt-get install pgbouncer); under CI=true its absence fails them.

package main

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"gatehouse/cmd/gatehouse/harness"
	"gatehouse/models/testdb"
)

// behindPgBouncer is a fresh database with roles of its own and a PgBouncer in front of it, both
// removed when the test ends.
func behindPgBouncer(t *testing.T) (*harness.Database, *harness.PgBouncer) {
	t.Helper()
	admin := testdb.PostgresURL(t)
	if admin == "" {
		t.Skipf("%s is not set: the PgBouncer tests need PostgreSQL", testdb.EnvPostgres)
	}
	if !harness.PgBouncerInstalled() {
		if os.Getenv("CI") == "true" {
			t.Fatal("pgbouncer is not installed, and CI=true requires the PgBouncer tests (.ci/run installs it)")
		}
		t.Skip("pgbouncer is not installed (apt-get install pgbouncer): PgBouncer tests skipped")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	db, err := harness.CreateDatabase(ctx, admin, "gh_pgb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A database left behind is worth a note, not a failure of what the test checked.
		if err := db.Drop(context.Background()); err != nil {
			t.Logf("the test's database and roles %s are left behind: %v", db.Name, err)
		}
	})
	pgb, err := harness.StartPgBouncer(ctx, harness.PgBouncerConfig{Dir: t.TempDir(), Database: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pgb.Stop()
		if t.Failed() {
			t.Logf("pgbouncer's log:\n%s", lastLines(pgb.Log(), 15))
		}
	})
	return db, pgb
}

// sharedBaseURL is the public URL of the instances of one deployment (behind their load
// balancer): the issuer of their tokens, which every instance checks.
const sharedBaseURL = "http://127.0.0.1:8080"

// pgbouncerEnv is what an instance behind PgBouncer runs with: the pooled URL, statements that
// need no session, and the direct URL for the revocation feed.
func pgbouncerEnv(db *harness.Database, pgb *harness.PgBouncer) map[string]string {
	return map[string]string{
		"DATABASE_URL":                  pgb.URL(),
		"GATEHOUSE_PG_STATEMENTS":       "exec",
		"GATEHOUSE_LISTEN_DATABASE_URL": db.URL,
	}
}

// cacheLive reads gatehouse_revocation_cache_live from the server's /metrics.
func (srv *server) cacheLive(t *testing.T) string {
	t.Helper()
	r := srv.must(t, "GET", "/metrics", "")
	sc := bufio.NewScanner(strings.NewReader(string(r.Body)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "gatehouse_revocation_cache_live "); ok {
			return v
		}
	}
	return "absent"
}

// countRows runs a SELECT count(*) … on a direct connection.
func countRows(t *testing.T, databaseURL, query string, args ...any) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int64
	if err := conn.QueryRow(ctx, query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func lastLines(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Two instances behind PgBouncer in transaction mode, with GATEHOUSE_PG_STATEMENTS=exec and the
// feed on the direct URL: the CLI creates an account through the pooler, a device signs in on
// one instance and refreshes alternately on both, a wrong password is refused, and a sign-out on
// one instance, then a disable from the CLI, reach the other through the direct LISTEN feed
// (its cache is live and held the session, so only a notification can make it refuse in time).
func TestServeBehindPgBouncer(t *testing.T) {
	db, pgb := behindPgBouncer(t)
	env := with(pgbouncerEnv(db, pgb), map[string]string{
		"GATEHOUSE_KEY_DIR":    filepath.Join(t.TempDir(), "keys"),
		"GATEHOUSE_BASE_URL":   sharedBaseURL, // the token issuer: one for every instance
		"GATEHOUSE_ACCESS_TTL": "1h",          // far beyond revocationBound: a refusal is the revocation arriving
	})
	a := startServer(t, pgb.URL(), env)
	b := startServer(t, pgb.URL(), env)
	for _, email := range []string{"ada@example.com", "bob@example.com"} {
		if r := a.gatehouse(t, password+"\n", "user", "create", "--email", email, "--password-stdin"); r.code != 0 {
			t.Fatalf("user create through PgBouncer:\n%s", r)
		}
	}
	for _, srv := range []*server{a, b} {
		eventually(t, 15*time.Second, "the revocation feed on the direct URL goes live", func() (bool, string) {
			v := srv.cacheLive(t)
			return v == "1", "gatehouse_revocation_cache_live " + v
		})
	}

	// Sign-in, and a chain of refreshes that alternates between the instances.
	if r := b.must(t, "POST", "/auth/login", loginBody("ada@example.com", "wrong password"), "X-Device-Id", "ada-phone-0001"); r.Status != http.StatusUnauthorized {
		t.Errorf("a wrong password through PgBouncer: %s, want 401", r)
	}
	ada := a.login(t, "ada@example.com", "ada-phone-0001")
	bob := b.login(t, "bob@example.com", "bob-phone-0001")
	for i := range 20 {
		srv := []*server{a, b}[i%2]
		r, err := srv.refresh(t, ada)
		next, _ := r.cookie("gh_refresh")
		if err != nil || r.Status != http.StatusOK || next == "" {
			t.Fatalf("refresh %d on %s through PgBouncer: %v %v", i+1, srv.Addr, r, err)
		}
		ada.Refresh, ada.Access = next, r.accessToken()
	}
	live := countRows(t, db.URL, "SELECT count(*) FROM device_sessions WHERE device_id = 'ada-phone-0001' AND revoked_at IS NULL")
	if live != 1 {
		t.Errorf("%d live sessions for Ada's phone, want 1", live)
	}

	// B has cached Ada's session; A signs her out; B refuses her access token soon after.
	for range 3 {
		if r := b.must(t, "GET", "/api/me", "", "Authorization", "Bearer "+ada.Access); r.Status != http.StatusOK {
			t.Fatalf("GET /api/me on B before the sign-out: %s", r)
		}
	}
	if r := a.must(t, "POST", "/auth/logout", "", "Cookie", "gh_refresh="+ada.Refresh); r.Status != http.StatusNoContent {
		t.Fatalf("sign-out on A: %s", r)
	}
	eventually(t, revocationBound, "B refuses the access token A's sign-out revoked", func() (bool, string) {
		r := b.must(t, "GET", "/api/me", "", "Authorization", "Bearer "+ada.Access)
		return r.Status == http.StatusUnauthorized, r.String()
	})

	// The CLI disables Bob through the pooler; both instances refuse him.
	for _, srv := range []*server{a, b} {
		if r := srv.must(t, "GET", "/api/me", "", "Authorization", "Bearer "+bob.Access); r.Status != http.StatusOK {
			t.Fatalf("GET /api/me before the disable: %s", r)
		}
	}
	if r := a.gatehouse(t, "", "user", "disable", "--email", "bob@example.com"); r.code != 0 {
		t.Fatalf("user disable through PgBouncer:\n%s", r)
	}
	for _, srv := range []*server{a, b} {
		eventually(t, revocationBound, "the disable reaches "+srv.Addr, func() (bool, string) {
			r := srv.must(t, "GET", "/api/me", "", "Authorization", "Bearer "+bob.Access)
			return r.Status == http.StatusUnauthorized, r.String()
		})
	}
	for _, srv := range []*server{a, b} {
		if v := srv.cacheLive(t); v != "1" {
			t.Errorf("%s: the cache went off (gatehouse_revocation_cache_live %s): the feed did not stay up", srv.Addr, v)
		}
		if log := srv.Log(); strings.Contains(log, `"level":"ERROR"`) || strings.Contains(log, "cannot LISTEN") {
			t.Errorf("%s logged errors or a feed that cannot LISTEN:\n%s", srv.Addr, summarizeTrouble(log))
		}
	}
}

// Without GATEHOUSE_LISTEN_DATABASE_URL the feed LISTENs through PgBouncer, where LISTEN is
// accepted but no notification ever arrives. The server says so once, naming the setting, keeps
// its cache off, and so still refuses a revoked token at once, from the database.
func TestFeedThroughPgBouncerSaysSo(t *testing.T) {
	db, pgb := behindPgBouncer(t)
	env := pgbouncerEnv(db, pgb)
	delete(env, "GATEHOUSE_LISTEN_DATABASE_URL")
	env["GATEHOUSE_ACCESS_TTL"] = "1h"
	srv := startServer(t, pgb.URL(), env)
	line := srv.waitForLog(t, "revocation feed cannot LISTEN on this connection (PgBouncer in transaction mode?): set GATEHOUSE_LISTEN_DATABASE_URL to a direct PostgreSQL URL; until then every access-token check reads the database", 20*time.Second)
	if !strings.Contains(line, `"level":"WARN"`) || !strings.Contains(line, "did not arrive") {
		t.Errorf("the warning does not say what happened: %s", line)
	}
	if v := srv.cacheLive(t); v != "0" {
		t.Errorf("gatehouse_revocation_cache_live %s with a feed that cannot LISTEN, want 0", v)
	}
	if r := srv.gatehouse(t, password+"\n", "user", "create", "--email", "cy@example.com", "--password-stdin"); r.code != 0 {
		t.Fatalf("user create:\n%s", r)
	}
	cy := srv.login(t, "cy@example.com", "cy-laptop-0001")
	if r := srv.must(t, "GET", "/api/me", "", "Authorization", "Bearer "+cy.Access); r.Status != http.StatusOK {
		t.Fatalf("GET /api/me: %s", r)
	}
	if r := srv.gatehouse(t, "", "user", "disable", "--email", "cy@example.com"); r.code != 0 {
		t.Fatalf("user disable:\n%s", r)
	}
	if r := srv.must(t, "GET", "/api/me", "", "Authorization", "Bearer "+cy.Access); r.Status != http.StatusUnauthorized {
		t.Errorf("GET /api/me right after the disable, with the cache off: %s, want 401", r)
	}
	if n := strings.Count(srv.Log(), "cannot LISTEN"); n != 1 {
		t.Errorf("the warning was logged %d times, want once", n)
	}
}

// docs/deploy/pgbouncer.ini shows the auth_query set-up the harness runs, word for word, and
// pools transactions.
func TestPgBouncerConfigShowsItsSetup(t *testing.T) {
	text, err := os.ReadFile(filepath.Join("..", "..", harness.PgBouncerConfigPath))
	if err != nil {
		t.Fatal(err)
	}
	var comments []string
	settings := map[string]string{}
	for _, line := range strings.Split(string(text), "\n") {
		if c, ok := strings.CutPrefix(line, ";"); ok {
			comments = append(comments, strings.TrimSpace(c))
		} else if k, v, ok := strings.Cut(line, "="); ok {
			settings[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	shown := strings.Join(comments, "\n")
	for _, line := range strings.Split(harness.AuthSetupSQL, "\n") {
		if !strings.Contains(shown, strings.TrimSpace(line)) {
			t.Errorf("%s does not show this line of the set-up: %s", harness.PgBouncerConfigPath, line)
		}
	}
	for k, want := range map[string]string{"pool_mode": "transaction", "auth_type": "scram-sha-256", "auth_user": "pgbouncer_auth"} {
		if settings[k] != want {
			t.Errorf("%s: %s = %q, want %q", harness.PgBouncerConfigPath, k, settings[k], want)
		}
	}
}

// GATEHOUSE_PG_STATEMENTS sets pgx's default_query_exec_mode on DATABASE_URL, which every
// command's connection reads; GATEHOUSE_LISTEN_DATABASE_URL defaults to DATABASE_URL. A value
// that cannot work stops the command with one line naming the setting.
func TestStatementAndListenSettings(t *testing.T) {
	const pg = "postgres://gatehouse@db.internal:6432/gatehouse?sslmode=disable"
	load := func(env map[string]string) (*Config, error) {
		fs, values := newFlagSet("serve", "")
		return loadConfig(fs, values, func(k string) string { return env[k] })
	}
	good := []struct {
		env                 map[string]string
		database, listening string
	}{
		{map[string]string{"DATABASE_URL": pg}, pg, pg},
		{map[string]string{"DATABASE_URL": pg, "GATEHOUSE_PG_STATEMENTS": "exec", "GATEHOUSE_LISTEN_DATABASE_URL": "postgres://gatehouse@db.internal:5432/gatehouse"},
			"postgres://gatehouse@db.internal:6432/gatehouse?default_query_exec_mode=exec&sslmode=disable", "postgres://gatehouse@db.internal:5432/gatehouse"},
		{map[string]string{"DATABASE_URL": pg + "&default_query_exec_mode=simple_protocol", "GATEHOUSE_PG_STATEMENTS": "simple"},
			"postgres://gatehouse@db.internal:6432/gatehouse?default_query_exec_mode=simple_protocol&sslmode=disable", ""},
		{map[string]string{"DATABASE_URL": pg, "GATEHOUSE_PG_STATEMENTS": "describe"},
			"postgres://gatehouse@db.internal:6432/gatehouse?default_query_exec_mode=cache_describe&sslmode=disable", ""},
		{map[string]string{"DATABASE_URL": pg, "GATEHOUSE_PG_STATEMENTS": "cache"},
			"postgres://gatehouse@db.internal:6432/gatehouse?default_query_exec_mode=cache_statement&sslmode=disable", ""},
		{map[string]string{}, "sqlite:gatehouse.db", "sqlite:gatehouse.db"},
	}
	for _, c := range good {
		cfg, err := load(c.env)
		if err != nil {
			t.Errorf("%v: %v", c.env, err)
			continue
		}
		if cfg.DatabaseURL != c.database {
			t.Errorf("%v: DatabaseURL %q, want %q", c.env, cfg.DatabaseURL, c.database)
		}
		if want := c.listening; want != "" && cfg.ListenDatabaseURL != want {
			t.Errorf("%v: ListenDatabaseURL %q, want %q", c.env, cfg.ListenDatabaseURL, want)
		}
	}
	bad := []struct {
		env  map[string]string
		says []string
	}{
		{map[string]string{"DATABASE_URL": pg, "GATEHOUSE_PG_STATEMENTS": "prepared"}, []string{"GATEHOUSE_PG_STATEMENTS", `"prepared"`, "cache, describe, exec, simple"}},
		{map[string]string{"GATEHOUSE_PG_STATEMENTS": "exec"}, []string{"GATEHOUSE_PG_STATEMENTS", "PostgreSQL"}},
		{map[string]string{"DATABASE_URL": pg + "&default_query_exec_mode=cache_statement", "GATEHOUSE_PG_STATEMENTS": "exec"}, []string{"GATEHOUSE_PG_STATEMENTS", "default_query_exec_mode=cache_statement"}},
		{map[string]string{"DATABASE_URL": pg, "GATEHOUSE_LISTEN_DATABASE_URL": "sqlite:x.db"}, []string{"GATEHOUSE_LISTEN_DATABASE_URL", "postgres://"}},
		{map[string]string{"GATEHOUSE_LISTEN_DATABASE_URL": pg}, []string{"GATEHOUSE_LISTEN_DATABASE_URL", "DATABASE_URL"}},
	}
	for _, c := range bad {
		_, err := load(c.env)
		if err == nil {
			t.Errorf("%v: accepted", c.env)
			continue
		}
		for _, s := range c.says {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%v: %q does not say %q", c.env, err, s)
			}
		}
	}
}
