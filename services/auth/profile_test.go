package auth_test

import (
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/models/testdb"
	"gatehouse/services/auth"
)

// revocations is an auth.Observer that remembers which users it was told about.
type revocations struct {
	mu    sync.Mutex
	users []string
}

func (r *revocations) RefreshOutcome(string) {}
func (r *revocations) LoginOutcome(string)   {}
func (r *revocations) Revoked(userID string, _ []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.users = append(r.users, userID)
}

func (r *revocations) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.users)
}

// The display name: set, trimmed, cleared (empty is none) or refused with nothing changed; never a
// security event; and the revocation caches, which answer /api/me, are told of each change.
func TestSetDisplayName(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		e := newEnv(t, db)
		seen := &revocations{}
		keys, err := auth.OpenKeyRing(t.TempDir(), rand.Reader, e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		pw, err := auth.NewPasswords(fastPasswords, rand.Reader, 1, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		svc := auth.New(testConfig, auth.Deps{Store: db.Store, Keys: keys, Passwords: pw, Now: e.clock.Now, Observer: seen})
		u, err := svc.CreateUser(e.ctx, "ann@example.com", "Ann", testPassword)
		if err != nil {
			t.Fatal(err)
		}
		name := func() string {
			a, err := svc.Account(e.ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			return a.DisplayName
		}
		events := func() int64 { return db.Count(t, "SELECT COUNT(*) FROM security_events") }
		eventsBefore := events()

		for _, c := range []struct{ input, want string }{
			{"Ann Lovelace", "Ann Lovelace"},
			{"  Ann  ", "Ann"},
			{"Ann 👩‍💻", "Ann 👩‍💻"}, // the zero-width joiner of an emoji sequence is allowed
			{strings.Repeat("n", 64), strings.Repeat("n", 64)},
			{"", ""},
			{"   ", ""},
		} {
			told := seen.count()
			e.clock.Advance(time.Second)
			if err := svc.SetDisplayName(e.ctx, u.ID, c.input); err != nil {
				t.Fatalf("SetDisplayName(%q): %v", c.input, err)
			}
			if got := name(); got != c.want {
				t.Errorf("SetDisplayName(%q): the name is %q, want %q", c.input, got, c.want)
			}
			if seen.count() != told+1 {
				t.Errorf("SetDisplayName(%q): the caches were not told", c.input)
			}
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM users WHERE updated_at = ?", e.clock.Now().UTC()); n != 1 {
			t.Errorf("updated_at is not the time of the last change")
		}

		if err := svc.SetDisplayName(e.ctx, u.ID, "Ann"); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ input, message string }{
			{strings.Repeat("n", 65), "Use at most 64 characters."},
			{"Ann\x00", "Remove the control and text-direction characters."},
			{"Ann\u202eoL", "Remove the control and text-direction characters."},
			{"Ann\u200b", "Remove the control and text-direction characters."},
			{"\xff", "Use at most 64 characters."},
		} {
			told := seen.count()
			err := svc.SetDisplayName(e.ctx, u.ID, c.input)
			var invalid *auth.ValidationError
			if !errors.As(err, &invalid) || invalid.Field != "display_name" || invalid.Message != c.message {
				t.Errorf("SetDisplayName(%q) = %v, want %q on display_name", c.input, err, c.message)
			}
			if got := name(); got != "Ann" {
				t.Errorf("a refused name changed it to %q", got)
			}
			if seen.count() != told {
				t.Errorf("SetDisplayName(%q) was refused, yet the caches were told", c.input)
			}
		}
		if n := events(); n != eventsBefore {
			t.Errorf("%d security events recorded for display-name changes, want none", n-eventsBefore)
		}
		if err := svc.SetDisplayName(e.ctx, "no-such-user", "Ann"); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("an unknown user: %v, want ErrNotFound", err)
		}
	})
}
