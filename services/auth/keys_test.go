package auth_test

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/models/testdb"
	"gatehouse/services/auth"
	"gatehouse/services/clock"
)

func TestKeyFilesArePrivate(t *testing.T) {
	dir := t.TempDir()
	if _, err := auth.OpenKeyRing(dir, rand.Reader, time.Now()); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("want a signing key and the secret, got %d files", len(entries))
	}
	for _, e := range entries {
		info, _ := os.Stat(filepath.Join(dir, e.Name()))
		if info.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %v, want 0600", e.Name(), info.Mode().Perm())
		}
	}
}

// TestKeyRotationAcrossInstances: two instances share a key directory. After a rotation the new key
// signs, tokens signed by the old key still verify on both, the other instance verifies tokens of
// the new key at once, and the JWKS publishes both until the old key is retired.
func TestKeyRotationAcrossInstances(t *testing.T) {
	db := testdb.SQLite(t)
	c := clock.NewManual(time.Now().UTC())
	dir := t.TempDir()
	a := newEnv(t, db)
	a.svc = newService(t, db, c, dir)
	a.clock = c
	b := newService(t, db, c, dir)
	a.user(t, "ann@example.com")
	before := a.signIn(t, "ann@example.com", "laptop")

	if _, err := auth.AddSigningKey(dir, rand.Reader, c.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	// Instance a reloads (as serve does every 30 s); b has not yet.
	keysA, err := auth.OpenKeyRing(dir, rand.Reader, c.Now())
	if err != nil {
		t.Fatal(err)
	}
	a.svc = auth.New(testConfig, auth.Deps{Store: db.Store, Keys: keysA, Passwords: mustPasswords(t), Now: c.Now})
	after := a.signIn(t, "ann@example.com", "phone")
	if kid(t, after.AccessToken) == kid(t, before.AccessToken) {
		t.Fatal("after rotation the new key must sign")
	}
	for name, token := range map[string]string{"old key": before.AccessToken, "new key": after.AccessToken} {
		if _, err := b.Verify(a.ctx, token); err != nil {
			t.Fatalf("instance b, token of the %s: %v", name, err)
		}
	}
	var set struct{ Keys []map[string]string }
	if err := json.Unmarshal(b.JWKS(), &set); err != nil || len(set.Keys) != 2 {
		t.Fatalf("JWKS must publish both keys: %s", b.JWKS())
	}

	retired, err := auth.RetireSigningKeys(dir, c.Now().Add(time.Hour))
	if err != nil || len(retired) != 1 {
		t.Fatalf("retire: %v %v", retired, err)
	}
	fresh := auth.New(testConfig, auth.Deps{Store: db.Store, Keys: mustKeys(t, dir), Passwords: mustPasswords(t), Now: c.Now})
	if _, err := fresh.Verify(a.ctx, before.AccessToken); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("a token of a retired key: %v", err)
	}
	if _, err := fresh.Verify(a.ctx, after.AccessToken); err != nil {
		t.Fatalf("the current key still verifies: %v", err)
	}
}

func mustKeys(t *testing.T, dir string) *auth.KeyRing {
	t.Helper()
	k, err := auth.OpenKeyRing(dir, rand.Reader, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustPasswords(t *testing.T) *auth.Passwords {
	t.Helper()
	p, err := auth.NewPasswords(fastPasswords, rand.Reader, 4, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBurstOfTokensOfANewKey: an instance that has not loaded a rotated key yet meets a burst of
// tokens signed with it (found by the three-instance test): every one verifies, the callers
// queueing behind one reload instead of being refused while it runs.
func TestBurstOfTokensOfANewKey(t *testing.T) {
	db := testdb.SQLite(t)
	c := clock.NewManual(time.Now().UTC())
	dir := t.TempDir()
	a := newEnv(t, db)
	a.svc, a.clock = newService(t, db, c, dir), c
	b := newService(t, db, c, dir)
	a.user(t, "ann@example.com")
	if _, err := auth.AddSigningKey(dir, rand.Reader, c.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	a.svc = auth.New(testConfig, auth.Deps{Store: db.Store, Keys: mustKeys(t, dir), Passwords: mustPasswords(t), Now: c.Now})
	var tokens []string
	for i := range 12 {
		tokens = append(tokens, a.signIn(t, "ann@example.com", fmt.Sprintf("device-%02d", i)).AccessToken)
	}
	var wg sync.WaitGroup
	var refused atomic.Int32
	for range 4 {
		for _, token := range tokens {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := b.Verify(a.ctx, token); err != nil {
					refused.Add(1)
				}
			}()
		}
	}
	wg.Wait()
	if n := refused.Load(); n != 0 {
		t.Fatalf("%d of %d verifications of the new key's tokens refused", n, 4*len(tokens))
	}
}
