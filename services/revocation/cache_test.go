package revocation_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/models"
	"gatehouse/models/testdb"
	"gatehouse/services/auth"
	"gatehouse/services/revocation"
)

// countingSource counts the database reads the cache lets through.
type countingSource struct {
	revocation.Source
	reads atomic.Int64
}

func (c *countingSource) AccessStateOf(ctx context.Context, sid string) (*models.AccessState, error) {
	c.reads.Add(1)
	return c.Source.AccessStateOf(ctx, sid)
}

// instance is one Gatehouse server's auth service with its own revocation cache and feed.
type instance struct {
	svc    *auth.Service
	cache  *revocation.Cache
	source *countingSource
}

type invalidator struct{ cache *revocation.Cache }

func (i invalidator) RefreshOutcome(string) {}
func (i invalidator) LoginOutcome(string)   {}
func (i invalidator) Revoked(userID string, sids []string) {
	i.cache.InvalidateUser(userID)
	for _, s := range sids {
		i.cache.InvalidateSession(s)
	}
}

func newInstance(t *testing.T, ctx context.Context, db *testdb.DB, store *models.Store, keyDir string) *instance {
	t.Helper()
	keys, err := auth.OpenKeyRing(keyDir, rand.Reader, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pw, err := auth.NewPasswords(auth.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1}, rand.Reader, 4, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	source := &countingSource{Source: store}
	cache := revocation.New(source, time.Minute)
	svc := auth.New(auth.Config{Issuer: "http://gatehouse.test", AccessTTL: 10 * time.Minute, RefreshIdleTTL: time.Hour,
		SessionMaxAge: 2 * time.Hour, RefreshGrace: 10 * time.Second}, auth.Deps{Store: store, Keys: keys, Passwords: pw, Observer: invalidator{cache}})
	svc.SetAccessStates(cache)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if db.Name == "postgres" {
		go cache.ListenPostgres(ctx, db.URL, log)
	} else {
		go cache.WatchSQLite(ctx, store, 5*time.Millisecond, log)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !cache.Live() {
		if time.Now().After(deadline) {
			t.Fatal("the revocation feed never connected")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return &instance{svc: svc, cache: cache, source: source}
}

// TestVerifyNeedsNoDatabaseOnceCached: bearer checks answer from memory.
func TestVerifyNeedsNoDatabaseOnceCached(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		a := newInstance(t, ctx, db, db.Store, t.TempDir())
		if _, err := a.svc.CreateUser(ctx, "ann@example.com", "", "correct horse battery"); err != nil {
			t.Fatal(err)
		}
		issued, err := a.svc.SignIn(ctx, "ann@example.com", "correct horse battery", auth.Client{DeviceID: "laptop-0001"})
		if err != nil {
			t.Fatal(err)
		}
		for range 100 {
			if _, err := a.svc.Verify(ctx, issued.AccessToken); err != nil {
				t.Fatal(err)
			}
		}
		if n := a.source.reads.Load(); n != 1 {
			t.Fatalf("100 verifications read the database %d times, want 1", n)
		}
		p, _ := a.svc.Verify(ctx, issued.AccessToken)
		if err := a.svc.SignOutEverywhere(ctx, p, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := a.svc.Verify(ctx, issued.AccessToken); !errors.Is(err, auth.ErrSessionRevoked) {
			t.Fatalf("on the instance that revoked, rejection is immediate: got %v", err)
		}
	})
}

// TestRevocationReachesAnotherInstance: two instances share one database; a revocation made on
// one is seen by the other through the change feed (LISTEN/NOTIFY on PostgreSQL, data_version on
// SQLite). It logs how long that took; the bound it checks is generous, the figure is the point.
func TestRevocationReachesAnotherInstance(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		keyDir := t.TempDir()
		storeB := db.Store
		if db.Name == "sqlite" { // a second process on the same file: its own connection
			other, err := models.Open(db.URL, models.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			storeB = other
		}
		a := newInstance(t, ctx, db, db.Store, keyDir)
		b := newInstance(t, ctx, db, storeB, keyDir)

		var latencies []time.Duration
		for i := range 50 {
			email := fmt.Sprintf("user%02d@example.com", i)
			if _, err := a.svc.CreateUser(ctx, email, "", "correct horse battery"); err != nil {
				t.Fatal(err)
			}
			issued, err := a.svc.SignIn(ctx, email, "correct horse battery", auth.Client{DeviceID: "device-0001"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.svc.Verify(ctx, issued.AccessToken); err != nil { // now cached on b
				t.Fatal(err)
			}
			p, _ := a.svc.Verify(ctx, issued.AccessToken)
			start := time.Now()
			if err := a.svc.SignOutDevice(ctx, p.UserID, p.SessionID, ""); err != nil {
				t.Fatal(err)
			}
			for {
				_, err := b.svc.Verify(ctx, issued.AccessToken)
				if errors.Is(err, auth.ErrSessionRevoked) {
					break
				}
				if time.Since(start) > 5*time.Second {
					t.Fatalf("instance b still accepts a revoked token after 5s (err %v)", err)
				}
				time.Sleep(200 * time.Microsecond)
			}
			latencies = append(latencies, time.Since(start))
		}
		sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
		t.Logf("%s: revocation seen by the other instance after p50 %v, max %v (%d trials)", db.Name, latencies[len(latencies)/2], latencies[len(latencies)-1], len(latencies))
	})
}

// TestFillRacingAnInvalidationIsDropped: a read that started before an invalidation must not
// put its (stale) answer in the cache.
func TestFillRacingAnInvalidationIsDropped(t *testing.T) {
	release := make(chan struct{})
	src := &slowSource{release: release, started: make(chan struct{}), state: models.AccessState{UserID: "u1", TokenVersion: 1}}
	c := revocation.New(src, time.Minute)
	c.SetLive(true)
	done := make(chan struct{})
	go func() {
		c.AccessStateOf(context.Background(), "s1")
		close(done)
	}()
	<-src.started
	c.InvalidateUser("u1")
	close(release)
	<-done
	if c.Size() != 0 {
		t.Fatal("an answer read before the invalidation was cached")
	}
	c.AccessStateOf(context.Background(), "s1")
	if c.Size() != 1 {
		t.Fatal("a read after the invalidation is cached")
	}
	c.SetLive(false)
	if c.Size() != 0 {
		t.Fatal("a cache whose feed dropped must hold nothing")
	}
}

type slowSource struct {
	release chan struct{}
	started chan struct{}
	state   models.AccessState
	once    atomic.Bool
}

func (s *slowSource) AccessStateOf(context.Context, string) (*models.AccessState, error) {
	if s.once.CompareAndSwap(false, true) {
		close(s.started)
		<-s.release
	}
	st := s.state
	return &st, nil
}

// TestFillSurvivesOtherInvalidations: revocations of other users and sessions during a read do not
// cost that read its place in the cache, while one of its own user does.
func TestFillSurvivesOtherInvalidations(t *testing.T) {
	for _, tc := range []struct {
		name       string
		invalidate func(*revocation.Cache)
		cached     bool
	}{
		{"another user", func(c *revocation.Cache) { c.InvalidateUser("u2") }, true},
		{"another session", func(c *revocation.Cache) { c.InvalidateSession("s2") }, true},
		{"its own session", func(c *revocation.Cache) { c.InvalidateSession("s1") }, false},
		{"its own user", func(c *revocation.Cache) { c.InvalidateUser("u1") }, false},
		{"a flush", func(c *revocation.Cache) { c.Flush() }, false},
		{"more than the ring holds", func(c *revocation.Cache) {
			for i := range 2000 {
				c.InvalidateSession(fmt.Sprintf("other-%d", i))
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			src := &slowSource{release: release, started: make(chan struct{}), state: models.AccessState{UserID: "u1", TokenVersion: 1}}
			c := revocation.New(src, time.Minute)
			c.SetLive(true)
			done := make(chan struct{})
			go func() {
				c.AccessStateOf(context.Background(), "s1")
				close(done)
			}()
			<-src.started
			tc.invalidate(c)
			close(release)
			<-done
			if got := c.Size() == 1; got != tc.cached {
				t.Fatalf("cached after the read: %v, want %v", got, tc.cached)
			}
		})
	}
}
