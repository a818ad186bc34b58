package auth_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"gatehouse/models/testdb"
	"gatehouse/services/auth"
)

func newMasterKey(t *testing.T) string {
	t.Helper()
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(raw)
}

func mustMaster(t *testing.T, value string) *auth.MasterKeys {
	t.Helper()
	m, err := auth.ParseMasterKeys(value)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestKeysInTheDatabase: instances sharing only the database agree on the server secret and the
// signing keys; the database holds them sealed, so a dump alone (or another master key) opens
// nothing; a rotated key verifies at once and signs only from its activation.
func TestKeysInTheDatabase(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		master := mustMaster(t, newMasterKey(t))
		now := time.Now().UTC()
		start := now.Add(-2 * time.Hour) // the first key signs from then
		a, err := auth.OpenDatabaseKeyRing(ctx, db.Store, master, rand.Reader, start)
		if err != nil {
			t.Fatalf("first instance: %v", err)
		}
		b, err := auth.OpenDatabaseKeyRing(ctx, db.Store, master, rand.Reader, start)
		if err != nil {
			t.Fatalf("second instance: %v", err)
		}
		if !bytes.Equal(a.CSRFKey(), b.CSRFKey()) || a.Current().ID != b.Current().ID {
			t.Fatal("two instances on one database disagree on the secret or the key")
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM signing_keys"); n != 1 {
			t.Fatalf("%d signing keys after two first starts, want 1", n)
		}

		// A dump: the private key's seed and the secret appear nowhere in it.
		var sealedKey, sealedSecret []byte
		db.Store.DB().Raw("SELECT sealed FROM signing_keys").Row().Scan(&sealedKey)
		db.Store.DB().Raw("SELECT sealed FROM server_secret").Row().Scan(&sealedSecret)
		if bytes.Contains(sealedKey, a.Current().Private.Seed()) || len(sealedSecret) < 32 {
			t.Fatal("the stored signing key holds its seed in the clear")
		}
		if _, err := auth.OpenDatabaseKeyRing(ctx, db.Store, mustMaster(t, newMasterKey(t)), rand.Reader, now); err == nil ||
			!strings.Contains(err.Error(), "does not list") {
			t.Fatalf("another master key opened the keys: %v", err)
		}

		// Rotation: published at once, signs from its activation.
		first := a.Current().ID
		later, err := auth.AddDatabaseSigningKey(ctx, db.Store, master, rand.Reader, now, now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Reload(); err != nil {
			t.Fatal(err)
		}
		if _, ok := b.Lookup(later); !ok || b.Current().ID != first {
			t.Fatalf("a key activating in an hour: verifies %v, current %s; want it to verify, and %s to sign", ok, b.Current().ID, first)
		}
		if !strings.Contains(string(b.JWKS()), later) {
			t.Error("the JWKS does not publish the new key yet")
		}
		active, err := auth.AddDatabaseSigningKey(ctx, db.Store, master, rand.Reader, now, now.Add(-time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Reload(); err != nil {
			t.Fatal(err)
		}
		if b.Current().ID != active {
			t.Fatalf("current %s, want the key active since a second ago", b.Current().ID)
		}

		// Retiring: a key whose successor has been active past the cutoff goes; the rest stay.
		retired, err := auth.RetireDatabaseSigningKeys(ctx, db.Store, now)
		if err != nil || len(retired) != 1 || retired[0] != first {
			t.Fatalf("retired %v, %v; want only %s", retired, err, first)
		}
		if err := a.Reload(); err != nil {
			t.Fatal(err)
		}
		if _, ok := a.Lookup(first); ok {
			t.Error("a retired key still verifies")
		}
	})
}

// TestKeyDirectoryImport: moving a key directory into the database keeps its secret and keys, so
// that refresh tokens, CSRF tokens and access tokens issued before keep working.
func TestKeyDirectoryImport(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		dir := t.TempDir()
		old, err := auth.OpenKeyRing(dir, rand.Reader, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		master := mustMaster(t, newMasterKey(t))
		n, err := auth.ImportKeyDirectory(ctx, db.Store, master, rand.Reader, dir)
		if err != nil || n != 1 {
			t.Fatalf("import: %d, %v", n, err)
		}
		ring, err := auth.OpenDatabaseKeyRing(ctx, db.Store, master, rand.Reader, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ring.CSRFKey(), old.CSRFKey()) || ring.Current().ID != old.Current().ID {
			t.Fatal("the imported ring differs from the directory")
		}
		if n, err := auth.ImportKeyDirectory(ctx, db.Store, master, rand.Reader, dir); err != nil || n != 0 {
			t.Fatalf("a second import: %d, %v; want nothing new", n, err)
		}
		if _, err := auth.ImportKeyDirectory(ctx, db.Store, master, rand.Reader, t.TempDir()); err == nil {
			t.Error("an empty directory was imported")
		}
	})
}

// TestMasterKeyRotation: with the new master key listed first and the old after it, everything
// opens; rewrap reseals under the new one, after which the old can go.
func TestMasterKeyRotation(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		oldKey, newKey := newMasterKey(t), newMasterKey(t)
		ring, err := auth.OpenDatabaseKeyRing(ctx, db.Store, mustMaster(t, oldKey), rand.Reader, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		both := mustMaster(t, newKey+", "+oldKey)
		if _, err := auth.OpenDatabaseKeyRing(ctx, db.Store, mustMaster(t, newKey), rand.Reader, time.Now()); err == nil {
			t.Fatal("the new master key alone opened values sealed under the old")
		}
		n, err := auth.RewrapKeys(ctx, db.Store, both, rand.Reader)
		if err != nil || n != 2 {
			t.Fatalf("rewrap: %d, %v; want the secret and the key", n, err)
		}
		again, err := auth.OpenDatabaseKeyRing(ctx, db.Store, mustMaster(t, newKey), rand.Reader, time.Now())
		if err != nil {
			t.Fatalf("the new master key alone after rewrap: %v", err)
		}
		if !bytes.Equal(again.CSRFKey(), ring.CSRFKey()) || again.Current().ID != ring.Current().ID {
			t.Fatal("rewrap changed the keys")
		}
		if n, err := auth.RewrapKeys(ctx, db.Store, both, rand.Reader); err != nil || n != 0 {
			t.Fatalf("a second rewrap: %d, %v; want nothing to do", n, err)
		}
	})
}

func TestParseMasterKeys(t *testing.T) {
	good := newMasterKey(t)
	for _, bad := range []string{"", " , ", "short", base64.StdEncoding.EncodeToString(make([]byte, 16)), good + ",nope"} {
		if _, err := auth.ParseMasterKeys(bad); err == nil {
			t.Errorf("ParseMasterKeys(%q) accepted", bad)
		}
	}
	for _, ok := range []string{good, " " + good + " ", good + "," + newMasterKey(t), strings.TrimRight(strings.NewReplacer("+", "-", "/", "_").Replace(good), "=")} {
		if _, err := auth.ParseMasterKeys(ok); err != nil {
			t.Errorf("ParseMasterKeys(%q): %v", ok, err)
		}
	}
}
