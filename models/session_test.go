package models_test

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"gatehouse/models"
	"gatehouse/models/testdb"
)

// The device-session contract, on every database.

// sessionWorld stores alice's sessions (four live, one revoked, one expired but never revoked)
// and bob's one live session, on a device id that alice also uses:
//
//	id      user   device  last used   state
//	s-a1    alice  d1      now-1h      live
//	s-a2    alice  d2      now-3h      live
//	s-a3    alice  d3      now-2h      live
//	s-a4    alice  d4      now-1h      live (same last use as s-a1: id breaks the tie)
//	s-arev  alice  d5      now-30m     revoked at now-10m
//	s-aexp  alice  d6      now-20m     expired at now-1m, not revoked
//	s-b1    bob    d1      now-5m      live
func sessionWorld(t *testing.T, db *testdb.DB) {
	t.Helper()
	createUser(t, db, "alice")
	createUser(t, db, "bob")
	createSession(t, db, session("s-a1", "alice", "d1", now.Add(-time.Hour)))
	createSession(t, db, session("s-a2", "alice", "d2", now.Add(-3*time.Hour)))
	createSession(t, db, session("s-a3", "alice", "d3", now.Add(-2*time.Hour)))
	createSession(t, db, session("s-a4", "alice", "d4", now.Add(-time.Hour)))
	createSession(t, db, session("s-arev", "alice", "d5", now.Add(-30*time.Minute)))
	revokeSession(t, db, "s-arev", now.Add(-10*time.Minute))
	expired := session("s-aexp", "alice", "d6", now.Add(-20*time.Minute))
	expired.ExpiresAt, expired.TokenExpiresAt = now.Add(-time.Minute), now.Add(-time.Minute)
	createSession(t, db, expired)
	createSession(t, db, session("s-b1", "bob", "d1", now.Add(-5*time.Minute)))
}

func TestCreateSession(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		createUser(t, db, "alice")
		d := createSession(t, db, session("s-a1", "alice", "d1", now))

		got := sessionByID(t, db, d.ID)
		if !bytes.Equal(got.TokenHash, d.TokenHash) || got.UserID != "alice" || got.DeviceID != "d1" || !got.ExpiresAt.Equal(d.ExpiresAt) || got.RevokedAt != nil {
			t.Errorf("stored session: %+v", got)
		}
		// The first token is in the family's history from the start.
		if family, err := db.Store.FamilyOf(ctx, d.TokenHash); err != nil || family.ID != d.ID {
			t.Errorf("FamilyOf(first token): %+v, %v", family, err)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM refresh_tokens WHERE session_id = ?", d.ID); n != 1 {
			t.Errorf("token history of a new session: %d rows, want 1", n)
		}

		// One unrevoked session per user and device (the index device_sessions_live_device).
		err := db.Store.CreateSession(ctx, session("s-a1-again", "alice", "d1", now))
		wantErr(t, "second unrevoked session on the device", err, models.ErrConflict)
		revokeSession(t, db, d.ID, now)
		createSession(t, db, session("s-a1-again", "alice", "d1", now))
	})
}

func TestRevokeSession(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		sessionWorld(t, db)

		if ok, err := db.Store.RevokeSession(ctx, "s-a1", "replaced", now); err != nil || !ok {
			t.Errorf("first revoke: %v, %v; want true", ok, err)
		}
		if ok, err := db.Store.RevokeSession(ctx, "s-a1", "signed_out", now.Add(time.Minute)); err != nil || ok {
			t.Errorf("second revoke: %v, %v; want false", ok, err)
		}
		if got := sessionByID(t, db, "s-a1"); got.RevokedAt == nil || !got.RevokedAt.Equal(now) || got.RevokedReason != "replaced" {
			t.Errorf("after two revokes: revoked at %v for %q, want the first's %v for %q", got.RevokedAt, got.RevokedReason, now, "replaced")
		}
		if ok, err := db.Store.RevokeSession(ctx, "nobody", "signed_out", now); err != nil || ok {
			t.Errorf("revoke unknown: %v, %v; want false", ok, err)
		}
		if got := sessionByID(t, db, "s-a4"); got.RevokedAt != nil {
			t.Errorf("another session was revoked: %+v", got)
		}
	})
}

func TestRevokeUserSessions(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		sessionWorld(t, db)
		revokedBefore := sessionByID(t, db, "s-arev")

		ids, err := db.Store.RevokeUserSessions(ctx, "alice", "s-a3", "signed_out_others", now)
		if want := []string{"s-a1", "s-a2", "s-a4", "s-aexp"}; err != nil || !slices.Equal(sorted(ids), want) {
			t.Errorf("RevokeUserSessions(keep s-a3): %v, %v; want %v", ids, err, want)
		}
		for _, id := range []string{"s-a1", "s-a2", "s-a4", "s-aexp"} {
			if got := sessionByID(t, db, id); got.RevokedAt == nil || !got.RevokedAt.Equal(now) || got.RevokedReason != "signed_out_others" {
				t.Errorf("%s: revoked at %v for %q", id, got.RevokedAt, got.RevokedReason)
			}
		}
		if got := sessionByID(t, db, "s-a3"); got.RevokedAt != nil {
			t.Errorf("the kept session was revoked: %+v", got)
		}
		if got := sessionByID(t, db, "s-arev"); !got.RevokedAt.Equal(*revokedBefore.RevokedAt) || got.RevokedReason != revokedBefore.RevokedReason {
			t.Errorf("an already revoked session was revoked again: %v %q", got.RevokedAt, got.RevokedReason)
		}
		if got := sessionByID(t, db, "s-b1"); got.RevokedAt != nil {
			t.Errorf("bob's session was revoked: %+v", got)
		}

		ids, err = db.Store.RevokeUserSessions(ctx, "alice", "", "signed_out_everywhere", now)
		if err != nil || !slices.Equal(ids, []string{"s-a3"}) {
			t.Errorf("RevokeUserSessions(keep none): %v, %v; want [s-a3]", ids, err)
		}
		if ids, err = db.Store.RevokeUserSessions(ctx, "alice", "", "signed_out_everywhere", now); err != nil || len(ids) != 0 {
			t.Errorf("RevokeUserSessions with nothing left: %v, %v", ids, err)
		}
	})
}

// LiveSessionOnDevice finds the session the unique index counts: not revoked, expired or not.
func TestLiveSessionOnDevice(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		sessionWorld(t, db)
		for _, c := range []struct{ user, device, want string }{
			{"alice", "d1", "s-a1"},   // not bob's session on d1
			{"bob", "d1", "s-b1"},     // not alice's
			{"alice", "d6", "s-aexp"}, // expired but unrevoked: sign-in must revoke it to take its place
		} {
			if d, err := db.Store.LiveSessionOnDevice(ctx, c.user, c.device); err != nil || d.ID != c.want {
				t.Errorf("LiveSessionOnDevice(%s, %s): %q, %v; want %s", c.user, c.device, d.ID, err, c.want)
			}
		}
		for _, c := range []struct{ user, device, why string }{
			{"alice", "d5", "revoked"},
			{"bob", "d2", "another user's device"},
			{"alice", "d-none", "no session"},
		} {
			_, err := db.Store.LiveSessionOnDevice(ctx, c.user, c.device)
			wantErr(t, "LiveSessionOnDevice("+c.user+", "+c.device+"), "+c.why, err, models.ErrNotFound)
		}
	})
}

// LiveSessions, LeastRecentlyUsedSessions and CountUserLiveSessions see the same sessions: the
// user's, not revoked, not expired.
func TestLiveSessionLists(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		sessionWorld(t, db)

		list, err := db.Store.LiveSessions(ctx, "alice", now)
		if want := []string{"s-a1", "s-a4", "s-a3", "s-a2"}; err != nil || !slices.Equal(idsOf(list), want) {
			t.Errorf("LiveSessions(alice): %v, %v; want %v (most recently used first)", idsOf(list), err, want)
		}
		if list, err := db.Store.LiveSessions(ctx, "bob", now); err != nil || !slices.Equal(idsOf(list), []string{"s-b1"}) {
			t.Errorf("LiveSessions(bob): %v, %v", idsOf(list), err)
		}
		if list, err := db.Store.LiveSessions(ctx, "alice", now.Add(31*24*time.Hour)); err != nil || len(list) != 0 {
			t.Errorf("LiveSessions(alice) after every session expired: %v, %v", idsOf(list), err)
		}

		for _, c := range []struct {
			n    int
			want []string
		}{
			{3, []string{"s-a2", "s-a3", "s-a1"}},
			{10, []string{"s-a2", "s-a3", "s-a1", "s-a4"}},
			{1, []string{"s-a2"}},
		} {
			list, err := db.Store.LeastRecentlyUsedSessions(ctx, "alice", now, c.n)
			if err != nil || !slices.Equal(idsOf(list), c.want) {
				t.Errorf("LeastRecentlyUsedSessions(alice, %d): %v, %v; want %v", c.n, idsOf(list), err, c.want)
			}
		}

		for user, want := range map[string]int64{"alice": 4, "bob": 1, "nobody": 0} {
			if n, err := db.Store.CountUserLiveSessions(ctx, user, now); err != nil || n != want {
				t.Errorf("CountUserLiveSessions(%s): %d, %v; want %d", user, n, err, want)
			}
		}
		if n, err := db.Store.CountUserLiveSessions(ctx, "alice", now.Add(-15*time.Minute)); err != nil || n != 5 {
			t.Errorf("CountUserLiveSessions(alice) before s-aexp expired: %d, %v; want 5", n, err)
		}
	})
}

func TestLiveSessionOfUser(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		sessionWorld(t, db)
		if d, err := db.Store.LiveSessionOfUser(ctx, "alice", "s-a1", now); err != nil || d.ID != "s-a1" {
			t.Errorf("LiveSessionOfUser(alice, s-a1): %q, %v", d.ID, err)
		}
		for id, why := range map[string]string{"s-arev": "revoked", "s-aexp": "expired", "s-b1": "bob's", "nobody": "unknown"} {
			_, err := db.Store.LiveSessionOfUser(ctx, "alice", id, now)
			wantErr(t, "LiveSessionOfUser(alice, "+id+"), "+why, err, models.ErrNotFound)
		}
	})
}

func TestRenameSession(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		sessionWorld(t, db)

		if err := db.Store.RenameSession(ctx, "alice", "s-a1", "Work laptop", now); err != nil {
			t.Fatalf("rename: %v", err)
		}
		if got := sessionByID(t, db, "s-a1"); got.DeviceName != "Work laptop" || !got.UserNamed {
			t.Errorf("after rename: name %q, user named %v", got.DeviceName, got.UserNamed)
		}
		if got := sessionByID(t, db, "s-a4"); got.DeviceName != "Firefox on Linux" || got.UserNamed {
			t.Errorf("another session was renamed: name %q, user named %v", got.DeviceName, got.UserNamed)
		}

		for _, c := range []struct{ user, id, why string }{
			{"bob", "s-a1", "another user's"},
			{"alice", "nobody", "unknown"},
			{"alice", "s-arev", "revoked"},
			{"alice", "s-aexp", "expired"},
		} {
			err := db.Store.RenameSession(ctx, c.user, c.id, "Stolen", now)
			wantErr(t, "RenameSession("+c.user+", "+c.id+"), "+c.why, err, models.ErrNotFound)
		}
		for _, id := range []string{"s-a1", "s-arev", "s-aexp"} {
			if got := sessionByID(t, db, id); got.DeviceName == "Stolen" {
				t.Errorf("%s was renamed by a refused rename", id)
			}
		}
	})
}

func TestTouchAndMarkAuthenticated(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		sessionWorld(t, db)
		if err := db.Store.TouchSession(ctx, "s-a2", "198.51.100.7", now); err != nil {
			t.Fatal(err)
		}
		if err := db.Store.MarkAuthenticated(ctx, "s-a3", now); err != nil {
			t.Fatal(err)
		}
		if got := sessionByID(t, db, "s-a2"); !got.LastUsedAt.Equal(now) || got.LastIP != "198.51.100.7" || got.CreatedIP != "192.0.2.1" {
			t.Errorf("touched: last used %v from %s (created from %s)", got.LastUsedAt, got.LastIP, got.CreatedIP)
		}
		if got := sessionByID(t, db, "s-a3"); !got.AuthenticatedAt.Equal(now) || got.LastUsedAt.Equal(now) {
			t.Errorf("marked authenticated: authenticated %v, last used %v", got.AuthenticatedAt, got.LastUsedAt)
		}
		if got := sessionByID(t, db, "s-a1"); got.LastUsedAt.Equal(now) || got.AuthenticatedAt.Equal(now) {
			t.Errorf("an untouched session changed: %+v", got)
		}
	})
}

func TestAccessStateOf(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		sessionWorld(t, db)
		if _, _, err := db.Store.DisableUser(ctx, "bob", now); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			id   string
			want models.AccessState
		}{
			{"s-a1", models.AccessState{UserID: "alice", Email: "alice@example.com", DisplayName: "alice", TokenVersion: 1,
				SessionExpiresAt: now.Add(30 * 24 * time.Hour), AuthenticatedAt: now.Add(-2 * time.Hour)}},
			{"s-arev", models.AccessState{UserID: "alice", Email: "alice@example.com", DisplayName: "alice", TokenVersion: 1, SessionRevoked: true,
				SessionExpiresAt: now.Add(30 * 24 * time.Hour), AuthenticatedAt: now.Add(-90 * time.Minute)}},
			{"s-b1", models.AccessState{UserID: "bob", Email: "bob@example.com", DisplayName: "bob", TokenVersion: 2, UserDisabled: true,
				SessionRevoked:   true, // disabling signs every session out too
				SessionExpiresAt: now.Add(30 * 24 * time.Hour), AuthenticatedAt: now.Add(-65 * time.Minute)}},
		} {
			got, err := db.Store.AccessStateOf(ctx, c.id)
			if err != nil {
				t.Errorf("AccessStateOf(%s): %v", c.id, err)
				continue
			}
			if got.UserID != c.want.UserID || got.Email != c.want.Email || got.DisplayName != c.want.DisplayName ||
				got.TokenVersion != c.want.TokenVersion || got.UserDisabled != c.want.UserDisabled || got.SessionRevoked != c.want.SessionRevoked ||
				!got.SessionExpiresAt.Equal(c.want.SessionExpiresAt) || !got.AuthenticatedAt.Equal(c.want.AuthenticatedAt) {
				t.Errorf("AccessStateOf(%s): %+v, want %+v", c.id, *got, c.want)
			}
		}
		_, err := db.Store.AccessStateOf(ctx, "nobody")
		wantErr(t, "AccessStateOf(unknown)", err, models.ErrNotFound)
	})
}
