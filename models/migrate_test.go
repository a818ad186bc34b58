package models_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/models"
	"gatehouse/models/testdb"
)

// previousVersion is the schema the last release left behind; newVersions what Migrate brings.
const previousVersion = "0002_revocation_notify"

var newVersions = []string{"0003_events_per_user", "0004_outbox", "0005_account_links", "0006_second_factors", "0007_keys", "0008_history_trigger"}

// TestMigrateKeepsEveryRow builds a database at the previous schema, fills it as a running
// Gatehouse would have, migrates it, and checks that every row survived and the new schema works.
func TestMigrateKeepsEveryRow(t *testing.T) {
	testdb.EachEmpty(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		applied, err := db.Store.MigrateTo(ctx, previousVersion)
		if want := []string{"0001_init", previousVersion}; err != nil || !slices.Equal(applied, want) {
			t.Fatalf("migrate to %s: %v, %v; want %v", previousVersion, applied, err, want)
		}
		if indexExists(t, db, "security_events_user_id") {
			t.Fatalf("the index of %s exists before it is applied", newVersions[0])
		}
		fillPreviousSchema(t, db)
		before := snapshot(t, db)

		applied, err = db.Store.Migrate(ctx)
		if err != nil || !slices.Equal(applied, newVersions) {
			t.Fatalf("Migrate: %v, %v; want %v", applied, err, newVersions)
		}
		after := snapshot(t, db)
		for i := range after.Sessions {
			after.Sessions[i].AMR = "" // added by 0006 with its default, checked below
		}
		if !reflect.DeepEqual(after, before) {
			t.Errorf("rows changed by the migration:\nbefore %s\nafter  %s", before.summary(), after.summary())
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM users WHERE notify_sign_ins AND email_verified_at IS NULL"); n != int64(len(before.Users)) {
			t.Errorf("%d of %d existing users got sign-in notices on and an unverified address", n, len(before.Users))
		}
		if !indexExists(t, db, "security_events_user_id") {
			t.Errorf("index security_events_user_id missing after Migrate")
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM device_sessions WHERE amr <> 'pwd'"); n != 0 {
			t.Errorf("%d existing sessions got an amr other than pwd (they all signed in with a password)", n)
		}
		if applied, err := db.Store.Migrate(ctx); err != nil || len(applied) != 0 {
			t.Errorf("Migrate again: %v, %v; want nothing to do", applied, err)
		}

		// The old rows work through today's queries.
		if u, err := db.Store.UserByEmail(ctx, "alice@example.com"); err != nil || u.ID != aliceID || u.TokenVersion != 3 {
			t.Errorf("UserByEmail(alice): %+v, %v", u, err)
		}
		if d, err := db.Store.FamilyOf(ctx, tokenHash("phone-token-1")); err != nil || d.ID != "sess-phone" {
			t.Errorf("FamilyOf(an old token of the phone): %q, %v; want sess-phone", d.ID, err)
		}
		if list, err := db.Store.LiveSessions(ctx, aliceID, now); err != nil || !slices.Equal(idsOf(list), []string{"sess-phone"}) {
			t.Errorf("LiveSessions(alice): %v, %v; want [sess-phone]", idsOf(list), err)
		}
		if s, err := db.Store.AccessStateOf(ctx, "sess-bob"); err != nil || !s.UserDisabled || !s.SessionRevoked || s.TokenVersion != 5 {
			t.Errorf("AccessStateOf(sess-bob): %+v, %v", s, err)
		}
		e := &models.SecurityEvent{UserID: carolID, Kind: models.EventSignedIn, CreatedAt: now}
		if err := db.Store.RecordEvent(ctx, e); err != nil || e.ID <= before.Events[len(before.Events)-1].ID {
			t.Errorf("a new event after the migration: id %d, %v; want above every old id", e.ID, err)
		}

		// Prune's per-user trim, which the new index serves: alice's oldest events beyond the
		// newest EventsKeptPerUser go; also the token history past its expiry, and the sessions
		// revoked or expired before the cutoff (with their history).
		r, err := db.Store.Prune(ctx, now, now.Add(-24*time.Hour), now.Add(-365*24*time.Hour), 100)
		if want := (models.PruneResult{Tokens: 3, Sessions: 2, Events: 8}); err != nil || r != want {
			t.Errorf("Prune after the migration: %+v, %v; want %+v", r, err, want)
		}
		var aliceEvents []int64
		db.Store.DB().Raw("SELECT id FROM security_events WHERE user_id = ? ORDER BY id", aliceID).Scan(&aliceEvents)
		var want []int64
		for _, e := range before.Events {
			if e.UserID == aliceID {
				want = append(want, e.ID)
			}
		}
		if want = want[8:]; !slices.Equal(aliceEvents, want) {
			t.Errorf("alice's events after Prune: %d from id %v, want %d from id %v", len(aliceEvents), head(aliceEvents), len(want), head(want))
		}
		for user, n := range map[string]int64{bobID: 6, carolID: 3} {
			if got := db.Count(t, "SELECT COUNT(*) FROM security_events WHERE user_id = ?", user); got != n {
				t.Errorf("events of %s after Prune: %d, want %d", user, got, n)
			}
		}
	})
}

func TestMigrateToUnknownVersion(t *testing.T) {
	testdb.EachEmpty(t, func(t *testing.T, db *testdb.DB) {
		if applied, err := db.Store.MigrateTo(t.Context(), "0002"); err == nil {
			t.Errorf("MigrateTo(0002): applied %v, want an error naming no such version", applied)
		}
		applied, err := db.Store.MigrateTo(t.Context(), previousVersion)
		if want := []string{"0001_init", previousVersion}; err != nil || !slices.Equal(applied, want) {
			t.Errorf("MigrateTo(%s) after the refusal: %v, %v; want %v (none applied before)", previousVersion, applied, err, want)
		}
	})
}

const (
	aliceID = "6f1c2a4e-3b0d-4e57-9a51-0d7c8b1e2f30"
	bobID   = "a0d9e8c7-b6a5-4f43-8210-fedcba987654"
	carolID = "1e2d3c4b-5a69-4788-9a0b-c1d2e3f40516"
)

// fillPreviousSchema writes, in SQL, what a Gatehouse at the previous schema had stored: users (one
// disabled), sessions in every state (live and rotated, renamed, revoked, expired), token history
// and more security events for alice than Prune keeps.
func fillPreviousSchema(t *testing.T, db *testdb.DB) {
	t.Helper()
	month := now.Add(-30 * 24 * time.Hour)
	for _, u := range []struct {
		id, email, name string
		version         int
		disabled        *time.Time
	}{
		{aliceID, "alice@example.com", "Alice Martin", 3, nil},
		{bobID, "bob@example.com", "Bob", 5, ptr(now.Add(-time.Hour))},
		{carolID, "carol@example.com", "", 1, nil},
	} {
		db.MustExec(t, `INSERT INTO users (id, email, display_name, password_hash, token_version, disabled_at, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, u.id, u.email, u.name, "$argon2id$v=19$m=65536,t=3,p=2$c2FsdHNhbHQ$aGFzaGhhc2g", u.version, u.disabled, month, now.Add(-time.Hour))
	}

	for _, s := range []struct {
		id, user, device, name string
		named                  bool
		lastUsed, expires      time.Time
		token, prev            string
		rotated, revoked       *time.Time
		reason                 string
	}{
		{"sess-phone", aliceID, "dev-phone", "Alice's phone", true, now.Add(-time.Hour), now.Add(20 * 24 * time.Hour), "phone-token-5", "phone-token-4", ptr(now.Add(-time.Hour)), nil, ""},
		{"sess-laptop", aliceID, "dev-laptop", "Firefox on Linux", false, now.Add(-3 * 24 * time.Hour), now.Add(20 * 24 * time.Hour), "laptop-token", "", nil, ptr(now.Add(-2 * 24 * time.Hour)), "signed_out"},
		{"sess-tablet", aliceID, "dev-tablet", "Safari on iPad", false, now.Add(-40 * 24 * time.Hour), now.Add(-3 * 24 * time.Hour), "tablet-token", "", nil, nil, ""},
		{"sess-bob", bobID, "dev-bob", "Chrome on Windows", false, now.Add(-2 * time.Hour), now.Add(25 * 24 * time.Hour), "bob-token", "", nil, ptr(now.Add(-time.Hour)), "user_disabled"},
		{"sess-carol", carolID, "dev-carol", "Gatehouse for Android", false, now.Add(-10 * time.Minute), now.Add(29 * 24 * time.Hour), "carol-token", "", nil, nil, ""},
	} {
		var prev []byte
		if s.prev != "" {
			prev = tokenHash(s.prev)
		}
		tokenExpires := s.lastUsed.Add(14 * 24 * time.Hour)
		if s.expires.Before(tokenExpires) {
			tokenExpires = s.expires
		}
		db.MustExec(t, `INSERT INTO device_sessions (id, user_id, device_id, device_name, user_agent, created_ip, last_ip, created_at, last_used_at,
			expires_at, authenticated_at, token_hash, token_expires_at, prev_token_hash, rotated_at, revoked_at, revoked_reason, user_named)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			s.id, s.user, s.device, s.name, "Mozilla/5.0", "203.0.113.9", "198.51.100.20", month, s.lastUsed,
			s.expires, month, tokenHash(s.token), tokenExpires, prev, s.rotated, s.revoked, s.reason, s.named)
		// token_hash is not the first value: GORM spreads a slice placed right after "(" as an IN list.
		db.MustExec(t, `INSERT INTO refresh_tokens (session_id, token_hash, issued_at, expires_at) VALUES (?, ?, ?, ?)`,
			s.id, tokenHash(s.token), s.lastUsed, tokenExpires)
	}
	// The phone's history: four tokens it rotated through, three of them past their idle expiry.
	for i := 1; i <= 4; i++ {
		issued := now.Add(-time.Duration(5-i) * 6 * 24 * time.Hour)
		db.MustExec(t, `INSERT INTO refresh_tokens (session_id, token_hash, issued_at, expires_at) VALUES (?, ?, ?, ?)`,
			"sess-phone", tokenHash(fmt.Sprintf("phone-token-%d", i)), issued, issued.Add(14*24*time.Hour))
	}

	kinds := []string{models.EventSignedIn, models.EventSignInFailed, models.EventDeviceRenamed, models.EventSignedOut, models.EventPasswordChanged}
	insertEvents := func(user string, n int) {
		const perStatement = 100
		for done := 0; done < n; done += perStatement {
			var rows []string
			var args []any
			for i := done; i < min(n, done+perStatement); i++ {
				rows = append(rows, "(?, ?, ?, ?, ?, ?)")
				args = append(args, user, "sess-phone", "Alice's phone", kinds[i%len(kinds)], "198.51.100.20", now.Add(-time.Duration(n-i)*time.Minute))
			}
			db.MustExec(t, `INSERT INTO security_events (user_id, session_id, device_name, kind, ip, created_at) VALUES `+strings.Join(rows, ", "), args...)
		}
	}
	insertEvents(aliceID, models.EventsKeptPerUser+8)
	insertEvents(bobID, 6)
	insertEvents(carolID, 2)
}

func ptr[T any](v T) *T { return &v }

// rows is every row of every table, in a fixed order.
type rows struct {
	Users    []models.User
	Sessions []models.DeviceSession
	Tokens   []models.RefreshToken
	Events   []models.SecurityEvent
}

func snapshot(t *testing.T, db *testdb.DB) rows {
	t.Helper()
	var r rows
	for _, q := range []struct {
		dest  any
		order string
		cols  string
	}{
		// The users' columns of the previous schema: columns added since are checked on their own.
		{&r.Users, "id", "id, email, display_name, password_hash, token_version, disabled_at, created_at, updated_at"},
		{&r.Sessions, "id", "*"}, {&r.Tokens, "token_hash", "*"}, {&r.Events, "id", "*"},
	} {
		if err := db.Store.DB().Select(q.cols).Order(q.order).Find(q.dest).Error; err != nil {
			t.Fatalf("read rows: %v", err)
		}
	}
	return r
}

func (r rows) summary() string {
	return fmt.Sprintf("%d users, %d sessions, %d tokens, %d events", len(r.Users), len(r.Sessions), len(r.Tokens), len(r.Events))
}

func indexExists(t *testing.T, db *testdb.DB, name string) bool {
	t.Helper()
	q := "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = ?"
	if db.Name == "postgres" {
		q = "SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = ?"
	}
	return db.Count(t, q, name) == 1
}
