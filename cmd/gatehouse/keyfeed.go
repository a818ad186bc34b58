package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"gatehouse/models"
)

// followKeyChanges reloads the key ring whenever the database says the signing keys changed
// (NOTIFY gatehouse_keys, from a rotation on any instance or the CLI), so that a new key verifies
// everywhere at once; the periodic reload covers a notification missed while disconnected.
func followKeyChanges(ctx context.Context, dsn string, reload func(), log *slog.Logger) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := listenForKeys(ctx, dsn, reload)
		if ctx.Err() != nil {
			return
		}
		log.Warn("key change feed lost; keys reload every 30 s until it is back", "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func listenForKeys(ctx context.Context, dsn string, reload func()) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+models.KeysChannel); err != nil {
		return err
	}
	reload() // whatever changed while the feed was down
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		reload()
	}
}
