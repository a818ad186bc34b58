package main

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/cmd/gatehouse/harness"
	"gatehouse/models"
	"gatehouse/models/testdb"
	"gatehouse/services/auth"
)

// oneLine fails the test unless the command failed with status code and exactly one line on
// stderr that contains every one of want.
func oneLine(t *testing.T, r cliResult, code int, want ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit status %d, want %d\n%s", r.code, code, r)
	}
	lines := r.stderrLines()
	if len(lines) != 1 {
		t.Errorf("stderr has %d lines, want exactly one:\n%s", len(lines), r.stderr)
		return
	}
	for _, w := range want {
		if !strings.Contains(lines[0], w) {
			t.Errorf("stderr %q does not mention %q", lines[0], w)
		}
	}
}

func TestUserCreate(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		env := baseEnv(t, db.URL)
		ctx := context.Background()

		// The password is the first line of stdin, without its line ending (CRLF too); the email
		// is stored normalised.
		r := cli(t, env, password+"\r\nsecond line is ignored\n", "user", "create", "--email", "  Ann@Example.COM ", "--name", "Ann", "--password-stdin")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "created user ann@example.com (") || r.stderr != "" {
			t.Fatalf("user create:\n%s", r)
		}
		u, err := db.Store.UserByEmail(ctx, "ann@example.com")
		if err != nil {
			t.Fatalf("the new user is not in the database: %v", err)
		}
		if u.DisplayName != "Ann" || u.Disabled() || !strings.HasPrefix(u.PasswordHash, "$argon2id$") || strings.Contains(u.PasswordHash, password) {
			t.Errorf("stored user: %+v", u)
		}
		if !strings.Contains(r.stdout, u.ID) {
			t.Errorf("stdout %q does not name the new user's id %s", r.stdout, u.ID)
		}
		if _, err := newService(t, db).SignIn(ctx, "ann@example.com", password, auth.Client{DeviceID: "cli-test-device"}); err != nil {
			t.Errorf("sign in with the password given on stdin: %v", err)
		}

		failures := []struct {
			name  string
			stdin string
			args  []string
			code  int
			want  []string
		}{
			{"same email again, other case", password + "\n", []string{"--email", "ANN@example.com", "--password-stdin"}, 1, []string{"already exists"}},
			{"bad email", password + "\n", []string{"--email", "not-an-email", "--password-stdin"}, 1, []string{"email"}},
			{"short password", "short\n", []string{"--email", "bob@example.com", "--password-stdin"}, 1, []string{"password", "10"}},
			{"empty stdin", "", []string{"--email", "bob@example.com", "--password-stdin"}, 1, []string{"password"}},
			{"no --password-stdin", password + "\n", []string{"--email", "bob@example.com"}, 2, []string{"--password-stdin"}},
			{"no --email", password + "\n", []string{"--password-stdin"}, 2, []string{"--email"}},
		}
		for _, f := range failures {
			t.Run(f.name, func(t *testing.T) {
				oneLine(t, cli(t, env, f.stdin, append([]string{"user", "create"}, f.args...)...), f.code, f.want...)
			})
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM users"); n != 1 {
			t.Errorf("%d users after the failed creates, want 1", n)
		}
	})
}

func TestUserDisable(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		env := baseEnv(t, db.URL)
		ctx := context.Background()
		createUser(t, env, "dora@example.com")
		createUser(t, env, "other@example.com")

		// Dora signs in on two devices through a service on the same database, as a running server would.
		svc := newService(t, db)
		var devices []*auth.Issued
		for _, id := range []string{"dora-laptop-1", "dora-phone-22"} {
			issued, err := svc.SignIn(ctx, "dora@example.com", password, auth.Client{DeviceID: id})
			if err != nil {
				t.Fatal(err)
			}
			devices = append(devices, issued)
		}
		other, err := svc.SignIn(ctx, "other@example.com", password, auth.Client{DeviceID: "other-device"})
		if err != nil {
			t.Fatal(err)
		}
		before, _ := db.Store.UserByEmail(ctx, "dora@example.com")

		r := cli(t, env, "", "user", "disable", "--email", "Dora@Example.com")
		if r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, "dora@example.com") {
			t.Fatalf("user disable:\n%s", r)
		}

		after, _ := db.Store.UserByEmail(ctx, "dora@example.com")
		if !after.Disabled() {
			t.Error("the user is not marked disabled")
		}
		if after.TokenVersion <= before.TokenVersion {
			t.Errorf("token_version %d, was %d: not bumped", after.TokenVersion, before.TokenVersion)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM device_sessions WHERE user_id = ? AND revoked_at IS NULL", after.ID); n != 0 {
			t.Errorf("%d of the user's sessions are still live", n)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM security_events WHERE user_id = ? AND kind = ?", after.ID, models.EventUserDisabled); n != 1 {
			t.Errorf("%d user_disabled events, want 1", n)
		}
		for _, d := range devices {
			if _, err := svc.Refresh(ctx, d.RefreshToken, auth.Client{}); !errors.Is(err, auth.ErrSessionRevoked) {
				t.Errorf("refresh after disable: %v, want ErrSessionRevoked", err)
			}
			if _, err := svc.Verify(ctx, d.AccessToken); err == nil {
				t.Error("an access token of the disabled user still verifies")
			}
		}
		if _, err := svc.SignIn(ctx, "dora@example.com", password, auth.Client{DeviceID: "dora-laptop-1"}); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Errorf("sign in after disable: %v, want ErrInvalidCredentials", err)
		}

		// Nobody else is touched.
		if _, err := svc.Refresh(ctx, other.RefreshToken, auth.Client{DeviceID: "other-device"}); err != nil {
			t.Errorf("another user's refresh after the disable: %v", err)
		}

		oneLine(t, cli(t, env, "", "user", "disable", "--email", "nobody@example.com"), 1, "no user")
		oneLine(t, cli(t, env, "", "user", "disable"), 2, "--email")
	})
}

// emptyDatabase is a database of db's kind with no schema at all.
func emptyDatabase(t *testing.T, db *testdb.DB) string {
	t.Helper()
	if db.Name == "sqlite" {
		return "sqlite:" + filepath.Join(t.TempDir(), "empty.db")
	}
	base := testdb.PostgresURL(t)
	admin, err := models.Open(base, models.Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	schema := "t_empty_" + strings.ToLower(rand.Text()[:10])
	if err := admin.DB().Exec("CREATE SCHEMA " + schema).Error; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.DB().Exec("DROP SCHEMA " + schema + " CASCADE")
		admin.Close()
	})
	return testdb.WithSearchPath(base, schema)
}

func TestMigrate(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		env := baseEnv(t, emptyDatabase(t, db))

		first := cli(t, env, "", "migrate")
		if first.code != 0 || !strings.HasPrefix(first.stdout, "applied ") || !strings.Contains(first.stdout, "0001_init") {
			t.Fatalf("first migrate:\n%s", first)
		}
		store, err := models.Open(env["DATABASE_URL"], models.Options{MaxOpenConns: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		migrated := &testdb.DB{Name: db.Name, URL: env["DATABASE_URL"], Store: store}
		versions := migrated.Count(t, "SELECT COUNT(*) FROM schema_migrations")
		createUser(t, env, "kept@example.com")

		second := cli(t, env, "", "migrate")
		if second.code != 0 || second.stdout != "schema up to date\n" || second.stderr != "" {
			t.Fatalf("second migrate:\n%s", second)
		}
		if n := migrated.Count(t, "SELECT COUNT(*) FROM schema_migrations"); n != versions {
			t.Errorf("schema_migrations has %d rows after the second migrate, %d before", n, versions)
		}
		if n := migrated.Count(t, "SELECT COUNT(*) FROM users WHERE email = 'kept@example.com'"); n != 1 {
			t.Errorf("the second migrate lost data: %d users", n)
		}

		// The database the tests migrate is the one the command considers up to date.
		if r := cli(t, baseEnv(t, db.URL), "", "migrate"); r.stdout != "schema up to date\n" || r.code != 0 {
			t.Errorf("migrate on a test database:\n%s", r)
		}
	})
}

func TestPrune(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		now := time.Now().UTC().Truncate(time.Microsecond)
		ago := func(d time.Duration) time.Time { return now.Add(-d) }
		day := 24 * time.Hour
		gdb := db.Store.DB()
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		hashes := map[string][]byte{}
		hash := func(name string) []byte {
			if hashes[name] == nil {
				hashes[name] = []byte(rand.Text() + rand.Text())[:32]
			}
			return hashes[name]
		}

		must(gdb.Create(&models.User{ID: "u-prune", Email: "prune@example.com", PasswordHash: "x", TokenVersion: 1, CreatedAt: ago(60 * day), UpdatedAt: ago(60 * day)}).Error)
		session := func(id string, created, expires time.Time, revoked *time.Time) {
			d := &models.DeviceSession{
				ID: id, UserID: "u-prune", DeviceID: "device-" + id, DeviceName: id, CreatedAt: created, LastUsedAt: created,
				ExpiresAt: expires, AuthenticatedAt: created, TokenHash: hash(id + "-current"), TokenExpiresAt: expires, RevokedAt: revoked,
			}
			must(gdb.Create(d).Error)
		}
		token := func(name, sessionID string, issued, expires time.Time) {
			must(gdb.Create(&models.RefreshToken{TokenHash: hash(name), SessionID: sessionID, IssuedAt: issued, ExpiresAt: expires}).Error)
		}
		at := func(t time.Time) *time.Time { return &t }

		session("live", ago(25*day), now.Add(5*day), nil)
		token("live-current", "live", ago(day), now.Add(5*day))
		token("live-rotated-recently", "live", ago(2*day), now.Add(5*day))
		token("live-rotated-long-ago", "live", ago(25*day), ago(11*day)) // expired history
		session("revoked-long-ago", ago(40*day), now.Add(10*day), at(ago(30*day)))
		token("revoked-long-ago-current", "revoked-long-ago", ago(31*day), now.Add(10*day))
		session("revoked-recently", ago(3*day), now.Add(27*day), at(ago(time.Hour)))
		token("revoked-recently-current", "revoked-recently", ago(3*day), now.Add(11*day))
		session("expired-long-ago", ago(40*day), ago(10*day), nil)
		token("expired-long-ago-current", "expired-long-ago", ago(12*day), ago(10*day))
		session("expired-recently", ago(30*day), ago(time.Hour), nil)
		token("expired-recently-current", "expired-recently", ago(15*day), ago(time.Hour))
		must(gdb.Create(&models.SecurityEvent{UserID: "u-prune", Kind: models.EventSignedIn, CreatedAt: ago(100 * day)}).Error)
		must(gdb.Create(&models.SecurityEvent{UserID: "u-prune", Kind: models.EventSignedIn, CreatedAt: ago(day)}).Error)

		left := func() (sessions, tokens []string, events int64) {
			t.Helper()
			must(gdb.Raw("SELECT id FROM device_sessions ORDER BY id").Scan(&sessions).Error)
			var hs [][]byte
			must(gdb.Raw("SELECT token_hash FROM refresh_tokens").Scan(&hs).Error)
			for name, h := range hashes {
				for _, got := range hs {
					if string(got) == string(h) {
						tokens = append(tokens, name)
					}
				}
			}
			slices.Sort(tokens)
			return sessions, tokens, db.Count(t, "SELECT COUNT(*) FROM security_events")
		}
		pattern := regexp.MustCompile(`^pruned \d+ tokens, \d+ sessions, \d+ events, \d+ sent messages, \d+ sign-in challenges, \d+ unfinished authenticator setups\n$`)

		// Defaults: revoked or expired sessions go a week after the fact, events after 90 days,
		// token history when it has expired.
		env := baseEnv(t, db.URL)
		r := cli(t, env, "", "prune")
		if r.code != 0 || !pattern.MatchString(r.stdout) {
			t.Fatalf("prune:\n%s", r)
		}
		sessions, tokens, events := left()
		if want := []string{"expired-recently", "live", "revoked-recently"}; strings.Join(sessions, ",") != strings.Join(want, ",") {
			t.Errorf("sessions left %v, want %v", sessions, want)
		}
		if want := []string{"live-current", "live-rotated-recently", "revoked-recently-current"}; strings.Join(tokens, ",") != strings.Join(want, ",") {
			t.Errorf("tokens left %v, want %v", tokens, want)
		}
		if events != 1 {
			t.Errorf("%d events left, want the recent one", events)
		}

		// The retention settings come from the environment like every other setting.
		r = cli(t, with(env, map[string]string{"GATEHOUSE_REVOKED_RETENTION": "30m", "GATEHOUSE_EVENT_RETENTION": "12h"}), "", "prune")
		if r.code != 0 || !pattern.MatchString(r.stdout) {
			t.Fatalf("prune with short retention:\n%s", r)
		}
		sessions, tokens, events = left()
		if strings.Join(sessions, ",") != "live" || strings.Join(tokens, ",") != "live-current,live-rotated-recently" || events != 0 {
			t.Errorf("after the short-retention prune: sessions %v, tokens %v, %d events; want only the live session, its two tokens, no events", sessions, tokens, events)
		}

		// Nothing left to prune: a second run is a no-op.
		if r := cli(t, env, "", "prune"); r.code != 0 || r.stdout != "pruned 0 tokens, 0 sessions, 0 events, 0 sent messages, 0 sign-in challenges, 0 unfinished authenticator setups\n" {
			t.Errorf("prune with nothing to do:\n%s", r)
		}
	})
}

func TestHelp(t *testing.T) {
	cases := []struct {
		args []string
		want string // a word the usage must mention
	}{
		{[]string{"--help"}, "gatehouse user create"},
		{[]string{"-h"}, "gatehouse prune"},
		{[]string{"help"}, "gatehouse migrate"},
		{[]string{"serve", "--help"}, "GATEHOUSE_ADDR"},
		{[]string{"--addr", "127.0.0.1:1", "--help"}, "GATEHOUSE_ADDR"},
		{[]string{"migrate", "--help"}, "migrate"},
		{[]string{"user", "--help"}, "gatehouse user disable"},
		{[]string{"user", "create", "--help"}, "password-stdin"},
		{[]string{"user", "disable", "--help"}, "email"},
		{[]string{"keys", "--help"}, "rotate"},
		{[]string{"keys", "rotate", "--help"}, "GATEHOUSE_KEY_DIR"},
		{[]string{"prune", "--help"}, "GATEHOUSE_REVOKED_RETENTION"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			dir := t.TempDir()
			env := map[string]string{"DATABASE_URL": "sqlite:" + filepath.Join(dir, "help.db"), "GATEHOUSE_KEY_DIR": filepath.Join(dir, "keys")}
			r := cli(t, env, "", c.args...)
			out := r.stdout + r.stderr
			if r.code != 0 || !strings.Contains(out, "Usage") || !strings.Contains(out, c.want) || strings.Contains(r.stderr, "gatehouse: ") {
				t.Errorf("want exit 0 and a usage that mentions %q:\n%s", c.want, r)
			}
			// Help does nothing else: no database, no keys, no server.
			for _, p := range []string{"help.db", "keys"} {
				if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
					t.Errorf("--help created %s", p)
				}
			}
		})
	}
}

func TestUsageMistakes(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, "frobnicate"},
		{[]string{"user", "frobnicate"}, "frobnicate"},
		{[]string{"keys", "frobnicate"}, "rotate"},
		{[]string{"user"}, "create, disable, signout or mfa reset"},
		{[]string{"migrate", "--bogus"}, "bogus"},
		{[]string{"serve", "--addr"}, "addr"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			dir := t.TempDir()
			env := map[string]string{"DATABASE_URL": "sqlite:" + filepath.Join(dir, "usage.db"), "GATEHOUSE_KEY_DIR": filepath.Join(dir, "keys")}
			oneLine(t, cli(t, env, "", c.args...), 2, c.want)
		})
	}
}

// TestExitStatusOfTheBinary checks that the process behaves as cli assumes main does: one
// line on stderr and the exit status of the error.
func TestExitStatusOfTheBinary(t *testing.T) {
	gatehouse := harness.CLI{Env: map[string]string{"DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "x.db"), "GATEHOUSE_KEY_DIR": filepath.Join(t.TempDir(), "keys")}}
	oneLine(t, runBinary(t, gatehouse, "", "frobnicate"), 2, "gatehouse: ", "frobnicate")
	oneLine(t, runBinary(t, gatehouse, "", "serve", "--access-ttl", "abc"), 1, "gatehouse: ", "--access-ttl", "abc")
	if r := runBinary(t, gatehouse, "", "--help"); r.code != 0 || !strings.Contains(r.stdout+r.stderr, "Usage") {
		t.Errorf("gatehouse --help:\n%s", r)
	}
}

func TestBadConfiguration(t *testing.T) {
	cases := []struct {
		variable, value string
	}{
		{"GATEHOUSE_ACCESS_TTL", "abc"},
		{"GATEHOUSE_ACCESS_TTL", "-5m"},
		{"GATEHOUSE_LOGIN_LIMIT_IP", "10"},
		{"GATEHOUSE_LOGIN_LIMIT_ACCOUNT", "0/15m"},
		{"GATEHOUSE_SESSION_LIMIT", "60"},
		{"GATEHOUSE_REFRESH_BATCH", "maybe"},
		{"GATEHOUSE_MAX_SESSIONS", "0"},
		{"DATABASE_URL", "mysql://x"},
		{"GATEHOUSE_APP_ORIGINS", "notaurl"},
		{"GATEHOUSE_APP_ORIGINS", "https://app.example.com/path"},
		{"GATEHOUSE_BASE_URL", "ftp://example.com"},
		{"GATEHOUSE_ADDR", "nowhere"},
		{"GATEHOUSE_SIGNUP", "maybe"},
		{"GATEHOUSE_TRUSTED_PROXIES", "10.0.0.0/99"},
		{"GATEHOUSE_BODY_LIMIT", "lots"},
		{"GATEHOUSE_SHUTDOWN_TIMEOUT", "10"},
		{"GATEHOUSE_LOG_FORMAT", "xml"},
		{"REDIS_URL", "http://redis"},
		{"GATEHOUSE_REFRESH_GRACE", "999h"},
	}
	commands := [][]string{
		{"serve"},
		{"migrate"},
		{"prune"},
		{"keys", "rotate"},
		{"user", "create", "--email", "cfg@example.com", "--password-stdin"},
		{"user", "disable", "--email", "cfg@example.com"},
	}
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		for _, c := range cases {
			for _, cmd := range commands {
				t.Run(c.variable+"="+c.value+"/"+strings.Join(cmd[:min(2, len(cmd))], "_"), func(t *testing.T) {
					env := with(baseEnv(t, db.URL), map[string]string{"GATEHOUSE_ADDR": freeAddr(t), c.variable: c.value})
					r := cli(t, env, password+"\n", cmd...)
					want := []string{c.variable, c.value}
					if c.variable == "GATEHOUSE_REFRESH_GRACE" {
						want = want[:1] // the line says what it must be shorter than
					}
					oneLine(t, r, 1, want...)
					if _, err := os.Stat(env["GATEHOUSE_KEY_DIR"]); err == nil {
						t.Errorf("the key directory was created: the command went on past the bad value")
					}
				})
			}
		}

		// A flag names itself.
		env := baseEnv(t, db.URL)
		oneLine(t, cli(t, env, "", "serve", "--access-ttl", "abc"), 1, "--access-ttl", "abc")
		oneLine(t, cli(t, env, "", "prune", "--login-limit-ip=10"), 1, "--login-limit-ip", "10")
	})
}

// TestUserSignOut: an operator signs an account out of every device without disabling it.
func TestUserSignOut(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		env := baseEnv(t, db.URL)
		ctx := context.Background()
		createUser(t, env, "erin@example.com")
		svc := newService(t, db)
		issued, err := svc.SignIn(ctx, "erin@example.com", password, auth.Client{DeviceID: "erin-laptop-1"})
		if err != nil {
			t.Fatal(err)
		}
		r := cli(t, env, "", "user", "signout", "--email", "erin@example.com")
		if r.code != 0 || !strings.Contains(r.stdout, "erin@example.com") {
			t.Fatalf("user signout:\n%s", r)
		}
		if _, err := svc.Refresh(ctx, issued.RefreshToken, auth.Client{}); !errors.Is(err, auth.ErrSessionRevoked) {
			t.Fatalf("refresh after signout: %v", err)
		}
		if _, err := svc.SignIn(ctx, "erin@example.com", password, auth.Client{DeviceID: "erin-laptop-1"}); err != nil {
			t.Fatalf("the account is not disabled: %v", err)
		}
		if r := cli(t, env, "", "user", "signout", "--email", "nobody@example.com"); r.code == 0 || !strings.Contains(r.stderr, "no user") {
			t.Fatalf("unknown email:\n%s", r)
		}
	})
}

// TestUserMFAReset: an operator removes every second factor of a person who lost their phone and
// their codes; the password alone signs in again, and the account's activity says so.
func TestUserMFAReset(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		env := baseEnv(t, db.URL)
		ctx := context.Background()
		createUser(t, env, "fay@example.com")
		svc := newService(t, db)
		issued, err := svc.SignIn(ctx, "fay@example.com", password, auth.Client{DeviceID: "fay-laptop-1"})
		if err != nil {
			t.Fatal(err)
		}
		p, err := svc.Verify(ctx, issued.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		enrolment, err := svc.BeginTOTP(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		code, err := auth.TOTPCode(enrolment.Secret, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.ConfirmTOTP(ctx, p, enrolment.FactorID, "Fay's phone", code, ""); err != nil {
			t.Fatalf("confirm TOTP: %v", err)
		}
		var second *auth.SecondFactorRequired
		if _, err := svc.SignIn(ctx, "fay@example.com", password, auth.Client{DeviceID: "fay-tablet-1"}); !errors.As(err, &second) {
			t.Fatalf("sign-in with a factor: %v, want second factor required", err)
		}

		r := cli(t, env, "", "user", "mfa", "reset", "--email", "fay@example.com")
		if r.code != 0 || !strings.Contains(r.stdout, "fay@example.com") || !strings.Contains(r.stdout, "1 removed") {
			t.Fatalf("user mfa reset:\n%s", r)
		}
		if _, err := svc.SignIn(ctx, "fay@example.com", password, auth.Client{DeviceID: "fay-tablet-1"}); err != nil {
			t.Fatalf("sign-in after the reset: %v, want the password alone to do", err)
		}
		if _, err := svc.CompleteSecondFactor(ctx, second.Challenge, code, auth.Client{}); !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("the open second step after the reset: %v, want invalid token", err)
		}
		events, err := svc.Events(ctx, p.UserID, 50)
		if err != nil {
			t.Fatal(err)
		}
		if !hasEvent(events, auth.EventFactorsReset) {
			t.Fatalf("events %v: no %s", events, auth.EventFactorsReset)
		}
		if r := cli(t, env, "", "user", "mfa", "reset", "--email", "nobody@example.com"); r.code == 0 || !strings.Contains(r.stderr, "no user") {
			t.Fatalf("unknown email:\n%s", r)
		}
		if r := cli(t, env, "", "user", "mfa"); r.code == 0 || !strings.Contains(r.stderr, "reset") {
			t.Fatalf("user mfa without reset:\n%s", r)
		}
	})
}

func hasEvent(events []auth.Event, kind auth.EventKind) bool {
	for _, e := range events {
		if e.Kind == kind {
			return true
		}
	}
	return false
}
