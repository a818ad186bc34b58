//go:build unix

package models_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"gatehouse/models"
)

// withUmask022 runs the test under the common umask 022, with which files created with SQLite's
// default mode come out 0644 (a stricter umask would hide the fault these tests look for). The
// umask belongs to the process: these tests do not run in parallel.
func withUmask022(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
}

// openAndWrite opens databaseURL, migrates it (a write, so the WAL and its index exist) and keeps
// the store open until the test ends: the -wal and -shm files last as long as the connection.
func openAndWrite(t *testing.T, databaseURL string) {
	t.Helper()
	store, err := models.Open(databaseURL, models.Options{})
	if err != nil {
		t.Fatalf("open %s: %v", databaseURL, err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := store.Migrate(t.Context()); err != nil {
		t.Fatalf("migrate %s: %v", databaseURL, err)
	}
}

// assertOwnerOnly checks that the database and its -wal and -shm files exist with mode 0600.
func assertOwnerOnly(t *testing.T, path string) {
	t.Helper()
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		info, err := os.Stat(name)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(name), err)
			continue
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s has mode %04o, want 0600: it holds password hashes", filepath.Base(name), perm)
		}
	}
}

// TestSQLiteFilesAreOwnerOnly: the database holds password hashes, so a new one, its write-ahead
// log and its shared-memory index are created readable by their owner only, whichever way
// DATABASE_URL names the file.
func TestSQLiteFilesAreOwnerOnly(t *testing.T) {
	withUmask022(t)
	for _, tc := range []struct {
		name string
		url  func(dir string) string // DATABASE_URL for gatehouse.db in dir
	}{
		{"relative path, the default", func(string) string { return "sqlite:gatehouse.db" }},
		{"absolute path", func(dir string) string { return "sqlite:" + filepath.Join(dir, "gatehouse.db") }},
		{"sqlite:// and an absolute path", func(dir string) string { return "sqlite://" + filepath.Join(dir, "gatehouse.db") }},
		{"path with a query", func(dir string) string { return "sqlite:" + filepath.Join(dir, "gatehouse.db") + "?cache=shared" }},
		{"file: URI with parameters", func(dir string) string {
			return "sqlite:file:" + filepath.Join(dir, "gatehouse.db") + "?mode=rwc&cache=shared"
		}},
		{"file:// URI, percent-encoded", func(dir string) string {
			return "sqlite:file://" + filepath.Join(dir, "gate%68ouse.db")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			openAndWrite(t, tc.url(dir))
			assertOwnerOnly(t, filepath.Join(dir, "gatehouse.db"))
		})
	}
}

// TestSQLiteExistingFilesAreRestricted: a database an earlier version created 0644, and the
// -wal and -shm a crash left behind, are made owner-only when the store opens them.
func TestSQLiteExistingFilesAreRestricted(t *testing.T) {
	withUmask022(t)
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		// Empty files: an empty database, an empty log, an index SQLite rebuilds.
		if err := os.WriteFile(name, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	openAndWrite(t, "sqlite:"+path)
	assertOwnerOnly(t, path)
}

// TestSQLiteInMemoryCreatesNoFile: an in-memory database names no file, so none is created for it.
func TestSQLiteInMemoryCreatesNoFile(t *testing.T) {
	for _, databaseURL := range []string{"sqlite::memory:", "sqlite:file::memory:?cache=shared", "sqlite:file:memdb1?mode=memory&cache=shared"} {
		t.Run(databaseURL, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			openAndWrite(t, databaseURL)
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				t.Errorf("an in-memory database created the file %q", e.Name())
			}
		})
	}
}

// TestSQLiteReadOnlyURICreatesNoFile: a file: URI whose mode forbids creating the database
// (mode=ro, mode=rw) must still fail on a missing file, not open an empty one made for it.
func TestSQLiteReadOnlyURICreatesNoFile(t *testing.T) {
	for _, mode := range []string{"ro", "rw"} {
		t.Run(mode, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "gatehouse.db")
			store, err := models.Open("sqlite:file:"+path+"?mode="+mode, models.Options{})
			if err == nil {
				store.Close()
				t.Errorf("opened a missing database with mode=%s", mode)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("mode=%s: %s exists (%v), want no file", mode, filepath.Base(path), err)
			}
		})
	}
}
