package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"time"

	"gatehouse/services/auth"
)

func keysCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "rotate" {
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
			fmt.Fprintln(stdout, "Usage:\n  gatehouse keys rotate [flags]")
			return nil
		}
		return fmt.Errorf("%w: keys needs rotate", errUsage)
	}
	fs, values := newFlagSet("keys rotate", "Adds a new signing key that becomes current on every instance sharing the key directory. Keys whose tokens have all expired (older than their successor by the access lifetime) are deleted.")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError(fs, err, stdout)
	}
	cfg, err := loadConfig(fs, values, getenv)
	if err != nil {
		return err
	}
	now := time.Now()
	if _, err := auth.OpenKeyRing(cfg.KeyDir, rand.Reader, now); err != nil {
		return err
	}
	kid, err := auth.AddSigningKey(cfg.KeyDir, rand.Reader, now)
	if err != nil {
		return err
	}
	// A key stays published for one access lifetime after its successor appeared (plus a
	// minute of clock skew): every token it signed has expired by then.
	retired, err := auth.RetireSigningKeys(cfg.KeyDir, now.Add(-cfg.AccessTTL-time.Minute))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "new signing key %s is current; retired %d old keys\n", kid, len(retired))
	return nil
}
