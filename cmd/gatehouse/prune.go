package main

import (
	"context"
	"fmt"
	"io"
)

func pruneCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, values := newFlagSet("prune", "Deletes expired token history, long-revoked or expired sessions, and old security events, in batches.")
	if err := fs.Parse(args); err != nil {
		return usageError(fs, err, stdout)
	}
	cfg, err := loadConfig(fs, values, getenv)
	if err != nil {
		return err
	}
	a, err := openApp(ctx, cfg, stderr, nil)
	if err != nil {
		return err
	}
	defer a.Close()
	r, err := a.auth.Prune(ctx, a.pruneConfig())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "pruned %d tokens, %d sessions, %d events, %d sent messages, %d sign-in challenges, %d unfinished authenticator setups\n",
		r.Tokens, r.Sessions, r.Events, r.Mail, r.Challenges, r.Enrolments)
	return nil
}
