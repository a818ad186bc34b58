package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"time"

	"gatehouse/models"
	"gatehouse/services/auth"
)

func keysCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "rotate" && args[0] != "import" && args[0] != "rewrap") {
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
			fmt.Fprintln(stdout, "Usage:\n  gatehouse keys rotate [flags]\n  gatehouse keys import --key-dir DIR   (PostgreSQL with GATEHOUSE_MASTER_KEY)\n  gatehouse keys rewrap                  (PostgreSQL with GATEHOUSE_MASTER_KEY)")
			return nil
		}
		return fmt.Errorf("%w: keys needs rotate, import or rewrap", errUsage)
	}
	switch args[0] {
	case "import":
		return keysImport(ctx, args[1:], getenv, stdout, stderr)
	case "rewrap":
		return keysRewrap(ctx, args[1:], getenv, stdout, stderr)
	}
	fs, values := newFlagSet("keys rotate", "Adds a new signing key. With keys in PostgreSQL (GATEHOUSE_MASTER_KEY) every instance loads it at once and it signs from a minute later, by when all have it; with a key directory it is current on every instance sharing the directory within 30 s. Keys whose tokens have all expired (their successor active for longer than the access lifetime) are deleted.")
	activateAfter := fs.Duration("activate-after", auth.KeyActivationDelay, "with keys in PostgreSQL: how long the new key is published before it signs (every instance must have loaded it by then)")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError(fs, err, stdout)
	}
	cfg, err := loadConfig(fs, values, getenv)
	if err != nil {
		return err
	}
	if *activateAfter < 0 {
		return fmt.Errorf("%w: --activate-after must not be negative", errUsage)
	}
	now := time.Now()
	// A key stays published for one access lifetime after its successor became active (plus a
	// minute of clock skew): every token it signed has expired by then.
	cutoff := now.Add(-cfg.AccessTTL - time.Minute)
	if keysInDatabase(cfg) {
		a, err := openApp(ctx, cfg, stderr, nil)
		if err != nil {
			return err
		}
		defer a.Close()
		master, err := auth.ParseMasterKeys(cfg.MasterKey)
		if err != nil {
			return err
		}
		kid, err := auth.AddDatabaseSigningKey(ctx, a.store, master, rand.Reader, now, now.Add(*activateAfter))
		if err != nil {
			return err
		}
		retired, err := auth.RetireDatabaseSigningKeys(ctx, a.store, cutoff)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "new signing key %s is published on every instance and signs from %s; retired %d old keys\n",
			kid, now.Add(*activateAfter).UTC().Format(time.RFC3339), len(retired))
		return nil
	}
	if _, err := auth.OpenKeyRing(cfg.KeyDir, rand.Reader, now); err != nil {
		return err
	}
	kid, err := auth.AddSigningKey(cfg.KeyDir, rand.Reader, now)
	if err != nil {
		return err
	}
	retired, err := auth.RetireSigningKeys(cfg.KeyDir, cutoff)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "new signing key %s is current; retired %d old keys\n", kid, len(retired))
	return nil
}

// keysImport moves a key directory into PostgreSQL: its server secret (refresh and CSRF tokens
// issued before keep working) and its signing keys, sealed under the master key.
func keysImport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return databaseKeysCommand(ctx, args, getenv, stdout, "import", "Moves the signing keys and the server secret of GATEHOUSE_KEY_DIR into PostgreSQL, sealed under GATEHOUSE_MASTER_KEY: tokens issued before keep working. Run it once, before starting instances with the master key; the directory can then be deleted.",
		func(store *models.Store, master *auth.MasterKeys, cfg *Config) (string, error) {
			n, err := auth.ImportKeyDirectory(ctx, store, master, rand.Reader, cfg.KeyDir)
			return fmt.Sprintf("imported the server secret and %d signing keys from %s into the database", n, cfg.KeyDir), err
		})
}

// keysRewrap reseals everything under the first master key (rotating the master key).
func keysRewrap(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return databaseKeysCommand(ctx, args, getenv, stdout, "rewrap", "Reseals the signing keys and the server secret under the first key of GATEHOUSE_MASTER_KEY. To rotate the master key: list the new key first and the old one after it (comma-separated) on every instance, run this, then drop the old key.",
		func(store *models.Store, master *auth.MasterKeys, _ *Config) (string, error) {
			n, err := auth.RewrapKeys(ctx, store, master, rand.Reader)
			return fmt.Sprintf("resealed %d values under the first master key", n), err
		})
}

// databaseKeysCommand is a keys command that works on keys kept in PostgreSQL: it opens the
// database and the master keys, runs work, and prints the line it returns.
func databaseKeysCommand(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, name, summary string,
	work func(store *models.Store, master *auth.MasterKeys, cfg *Config) (string, error)) error {
	fs, values := newFlagSet("keys "+name, summary)
	if err := fs.Parse(args); err != nil {
		return usageError(fs, err, stdout)
	}
	cfg, err := loadConfig(fs, values, getenv)
	if err != nil {
		return err
	}
	if !keysInDatabase(cfg) {
		return fmt.Errorf("%w: keys %s needs a postgres:// DATABASE_URL and GATEHOUSE_MASTER_KEY", errUsage, name)
	}
	master, err := auth.ParseMasterKeys(cfg.MasterKey)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	done, err := work(store, master, cfg)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, done)
	return err
}
