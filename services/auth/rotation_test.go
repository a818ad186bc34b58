package auth_test

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/models"
	"gatehouse/models/testdb"
	"gatehouse/services/auth"
)

func TestRefreshRotates(t *testing.T) {
	eachRefreshPath(t, func(t *testing.T, e *env) {
		e.user(t, "ann@example.com")
		first := e.signIn(t, "ann@example.com", "laptop")

		e.clock.Advance(time.Minute)
		second, err := e.refresh(first.RefreshToken)
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if second.RefreshToken == first.RefreshToken || second.SessionID != first.SessionID {
			t.Fatalf("rotation must issue a new token in the same family: %+v", second)
		}
		if _, err := e.svc.Verify(e.ctx, second.AccessToken); err != nil {
			t.Fatalf("new access token: %v", err)
		}
		third, err := e.refresh(second.RefreshToken)
		if err != nil {
			t.Fatalf("refresh the successor: %v", err)
		}
		if got := e.db.Count(t, "SELECT COUNT(*) FROM refresh_tokens WHERE session_id = ?", first.SessionID); got != 3 {
			t.Fatalf("history holds %d tokens, want 3", got)
		}
		family := mustSession(t, e, third.SessionID)
		if strings.Contains(string(family.TokenHash), third.RefreshToken) {
			t.Fatal("token stored in plaintext")
		}
		if !bytes.Equal(family.TokenHash, hash(third.RefreshToken)) {
			t.Fatal("the family's live token is not the one the last refresh handed out")
		}
	})
}

func mustSession(t *testing.T, e *env, id string) *models.DeviceSession {
	t.Helper()
	d, err := e.db.Store.SessionByID(e.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestGraceRetryReturnsSameSuccessor(t *testing.T) {
	eachRefreshPath(t, func(t *testing.T, e *env) {
		e.user(t, "ann@example.com")
		first := e.signIn(t, "ann@example.com", "laptop")
		second, err := e.refresh(first.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(testConfig.RefreshGrace - time.Second)
		retry, err := e.refresh(first.RefreshToken)
		if err != nil {
			t.Fatalf("retry within grace: %v", err)
		}
		if retry.RefreshToken != second.RefreshToken {
			t.Fatal("a retry within grace must get the same successor")
		}
		if retry.AccessToken == second.AccessToken {
			t.Fatal("a retry gets a fresh access token")
		}
		if _, err := e.refresh(retry.RefreshToken); err != nil {
			t.Fatalf("the successor still works after a retry: %v", err)
		}
	})
}

func TestReplayRevokesFamily(t *testing.T) {
	cases := []struct {
		name   string
		replay func(t *testing.T, e *env, first, second *auth.Issued)
	}{
		{"after the grace window", func(t *testing.T, e *env, first, _ *auth.Issued) {
			e.clock.Advance(testConfig.RefreshGrace)
		}},
		{"after the successor was used", func(t *testing.T, e *env, _, second *auth.Issued) {
			if _, err := e.refresh(second.RefreshToken); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			eachRefreshPath(t, func(t *testing.T, e *env) {
				e.user(t, "ann@example.com")
				first := e.signIn(t, "ann@example.com", "laptop")
				other := e.signIn(t, "ann@example.com", "phone")
				second, err := e.refresh(first.RefreshToken)
				if err != nil {
					t.Fatal(err)
				}
				tc.replay(t, e, first, second)

				if _, err := e.refresh(first.RefreshToken); !errors.Is(err, auth.ErrTokenReused) {
					t.Fatalf("replay: got %v, want ErrTokenReused", err)
				}
				if mustSession(t, e, first.SessionID).RevokedAt == nil {
					t.Fatal("the family is not revoked")
				}
				// No token of the family works any more: not the replayed one, not the successor
				// the device holds (live in the first case, rotated in the second).
				for _, token := range []string{first.RefreshToken, second.RefreshToken} {
					if _, err := e.refresh(token); !errors.Is(err, auth.ErrSessionRevoked) {
						t.Fatalf("a token of the revoked family: got %v, want ErrSessionRevoked", err)
					}
				}
				if _, err := e.svc.Verify(e.ctx, second.AccessToken); !errors.Is(err, auth.ErrSessionRevoked) {
					t.Fatalf("access token of a revoked family: %v", err)
				}
				events, _ := e.db.Store.EventsOfKind(e.ctx, first.UserID, models.EventTokenReused)
				if len(events) != 1 || events[0].SessionID != first.SessionID {
					t.Fatalf("want one token_reused event for the family, got %+v", events)
				}
				if _, err := e.refresh(other.RefreshToken); err != nil {
					t.Fatalf("another device is untouched: %v", err)
				}
			})
		})
	}
}

func TestRefreshFailures(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, e *env, issued *auth.Issued) string
		want  error
	}{
		{"garbage", func(*testing.T, *env, *auth.Issued) string { return "not-a-token" }, auth.ErrInvalidToken},
		{"empty", func(*testing.T, *env, *auth.Issued) string { return "" }, auth.ErrInvalidToken},
		{"truncated", func(_ *testing.T, _ *env, i *auth.Issued) string { return i.RefreshToken[:30] }, auth.ErrInvalidToken},
		{"unknown but well formed", func(_ *testing.T, _ *env, i *auth.Issued) string {
			return i.RefreshToken[:len(i.RefreshToken)-2] + "AA"
		}, auth.ErrInvalidToken},
		{"idle expiry", func(_ *testing.T, e *env, i *auth.Issued) string {
			e.clock.Advance(testConfig.RefreshIdleTTL)
			return i.RefreshToken
		}, auth.ErrTokenExpired},
		{"absolute expiry", func(t *testing.T, e *env, i *auth.Issued) string {
			token := i.RefreshToken
			for elapsed := time.Duration(0); elapsed < testConfig.SessionMaxAge; elapsed += 10 * 24 * time.Hour {
				e.clock.Advance(10 * 24 * time.Hour)
				next, err := e.refresh(token)
				if err != nil {
					if errors.Is(err, auth.ErrTokenExpired) {
						return token
					}
					t.Fatal(err)
				}
				token = next.RefreshToken
			}
			return token
		}, auth.ErrTokenExpired},
		{"signed out", func(t *testing.T, e *env, i *auth.Issued) string {
			if err := e.svc.SignOutDevice(e.ctx, i.UserID, i.SessionID, ""); err != nil {
				t.Fatal(err)
			}
			return i.RefreshToken
		}, auth.ErrSessionRevoked},
		{"user disabled", func(t *testing.T, e *env, i *auth.Issued) string {
			if err := e.svc.DisableUser(e.ctx, "ann@example.com"); err != nil {
				t.Fatal(err)
			}
			return i.RefreshToken
		}, auth.ErrSessionRevoked},
		{"signed out everywhere", func(t *testing.T, e *env, i *auth.Issued) string {
			p, err := e.svc.Verify(e.ctx, i.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.svc.SignOutEverywhere(e.ctx, p, ""); err != nil {
				t.Fatal(err)
			}
			return i.RefreshToken
		}, auth.ErrSessionRevoked},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			eachRefreshPath(t, func(t *testing.T, e *env) {
				e.user(t, "ann@example.com")
				issued := e.signIn(t, "ann@example.com", "laptop")
				token := tc.setup(t, e, issued)
				before := mustSession(t, e, issued.SessionID)
				if _, err := e.refresh(token); !errors.Is(err, tc.want) {
					t.Fatalf("got %v, want %v", err, tc.want)
				}
				after := mustSession(t, e, issued.SessionID)
				if string(before.TokenHash) != string(after.TokenHash) {
					t.Fatal("a failed refresh changed the live token")
				}
			})
		})
	}
}

func TestRefreshFromAnotherDeviceIsRefused(t *testing.T) {
	eachRefreshPath(t, func(t *testing.T, e *env) {
		e.user(t, "ann@example.com")
		issued := e.signIn(t, "ann@example.com", "laptop")
		_, err := e.svc.Refresh(e.ctx, issued.RefreshToken, auth.Client{DeviceID: "someone-else"})
		if !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("got %v, want ErrInvalidToken", err)
		}
		if _, err := e.svc.Refresh(e.ctx, issued.RefreshToken, auth.Client{DeviceID: "laptop"}); err != nil {
			t.Fatalf("the device itself still refreshes: %v", err)
		}
	})
}

// TestConcurrentRefreshNeverForks: 32 refreshes of one token at once, on one instance and on two
// instances sharing the database, rotate the family once (its history holds one successor: a
// fork would add another), and every caller holds the family's live token.
func TestConcurrentRefreshNeverForks(t *testing.T) {
	eachRefreshPath(t, func(t *testing.T, e *env) {
		keyDir := t.TempDir()
		instances := []*auth.Service{newService(t, e.db, e.clock, keyDir), newService(t, e.db, e.clock, keyDir)}
		if e.transactional {
			for _, in := range instances {
				auth.ForceTransactionalRefresh(in)
			}
		}
		e.svc = instances[0]
		e.user(t, "ann@example.com")
		issued := e.signIn(t, "ann@example.com", "laptop")

		const callers = 32
		var wg sync.WaitGroup
		results := make([]*auth.Issued, callers)
		errs := make([]error, callers)
		start := make(chan struct{})
		for i := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[i], errs[i] = instances[i%2].Refresh(e.ctx, issued.RefreshToken, auth.Client{IP: "192.0.2.9"})
			}()
		}
		close(start)
		wg.Wait()

		session := mustSession(t, e, issued.SessionID)
		if session.RevokedAt != nil {
			t.Fatal("concurrent refreshes of one token revoked the family")
		}
		// One rotation: a second successor of the token (a fork) would be a third row.
		if n := e.db.Count(t, "SELECT COUNT(*) FROM refresh_tokens WHERE session_id = ?", issued.SessionID); n != 2 {
			t.Fatalf("the family's history holds %d tokens after one rotation, want 2", n)
		}
		var winners int
		for i := range callers {
			if errs[i] != nil {
				if !errors.Is(errs[i], auth.ErrTokenReused) && !errors.Is(errs[i], auth.ErrInvalidToken) {
					t.Fatalf("caller %d: unexpected error %v", i, errs[i])
				}
				continue
			}
			winners++
			if got := results[i].RefreshToken; !bytes.Equal(hash(got), session.TokenHash) {
				t.Fatalf("caller %d holds a token that is not the family's live one", i)
			}
		}
		if winners != callers {
			t.Fatalf("%d of %d callers signed in; within grace all must converge", winners, callers)
		}
	})
}

// TestConcurrentSignInsOnOneDevice: a double-clicked sign-in, or an app retrying, leaves one live
// session on the device and no error.
func TestConcurrentSignInsOnOneDevice(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		e := newEnv(t, db)
		e.user(t, "ann@example.com")
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = e.svc.SignIn(e.ctx, "ann@example.com", testPassword, auth.Client{DeviceID: "tablet-000001"})
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("sign-in %d: %v", i, err)
			}
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM device_sessions WHERE device_id = 'tablet-000001' AND revoked_at IS NULL"); n != 1 {
			t.Fatalf("%d live sessions on one device, want 1", n)
		}
	})
}
