package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"gatehouse/models"
)

func migrateCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, values := newFlagSet("migrate", "Brings the database schema up to date. Running it again is a no-op.")
	if err := fs.Parse(args); err != nil {
		return usageError(fs, err, stdout)
	}
	cfg, err := loadConfig(fs, values, getenv)
	if err != nil {
		return err
	}
	store, err := models.Open(cfg.DatabaseURL, models.Options{MaxOpenConns: 2})
	if err != nil {
		return err
	}
	defer store.Close()
	applied, err := store.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "schema up to date")
		return nil
	}
	fmt.Fprintf(stdout, "applied %s\n", strings.Join(applied, ", "))
	return nil
}
