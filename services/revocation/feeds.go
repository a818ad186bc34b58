package revocation

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"gatehouse/models"
)

// Channel is the PostgreSQL NOTIFY channel and the Redis pub/sub channel of revocations.
const Channel = "gatehouse_revocation"

// ListenPostgres keeps a LISTEN connection open and applies every notification to the cache
// until ctx ends. While disconnected the cache is off (database reads), and it reconnects by itself.
func (c *Cache) ListenPostgres(ctx context.Context, dsn string, log *slog.Logger) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := c.listenOnce(ctx, dsn)
		c.SetLive(false)
		if ctx.Err() != nil {
			return
		}
		log.Warn("revocation feed lost; verifying against the database until it is back", "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (c *Cache) listenOnce(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return err
	}
	c.SetLive(true)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		c.apply(n.Payload)
	}
}

// WatchSQLite polls PRAGMA data_version and flushes the cache whenever another process committed
// to the same SQLite file (this process's own changes invalidate precisely, through Revoked).
func (c *Cache) WatchSQLite(ctx context.Context, store *models.Store, every time.Duration, log *slog.Logger) {
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	last, err := store.DataVersion(ctx)
	c.SetLive(err == nil)
	for {
		select {
		case <-ctx.Done():
			c.SetLive(false)
			return
		case <-ticker.C:
		}
		v, err := store.DataVersion(ctx)
		switch {
		case err != nil:
			if c.Live() {
				log.Warn("data_version check failed; verifying against the database", "error", err)
			}
			c.SetLive(false)
		case !c.Live():
			last = v
			c.SetLive(true)
		case v != last:
			last = v
			c.Flush()
		}
	}
}

// Redis fans revocations out to other instances through Redis pub/sub. It is used alongside a
// database feed, never instead of one: a message published after a commit can be lost.
type Redis struct {
	client *redis.Client
	cache  *Cache
	log    *slog.Logger
}

// NewRedis connects the cache to Redis pub/sub.
func NewRedis(client *redis.Client, cache *Cache, log *slog.Logger) *Redis {
	return &Redis{client: client, cache: cache, log: log}
}

// Subscribe applies messages from other instances until ctx ends.
func (r *Redis) Subscribe(ctx context.Context) {
	sub := r.client.Subscribe(ctx, Channel)
	defer sub.Close()
	for {
		msg, err := sub.ReceiveMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.cache.Flush()
			time.Sleep(200 * time.Millisecond)
			continue
		}
		r.cache.apply(msg.Payload)
	}
}

// Publish tells other instances what this one revoked.
func (r *Redis) Publish(ctx context.Context, userID string, sessionIDs []string) {
	msgs := []string{"u:" + userID}
	for _, sid := range sessionIDs {
		msgs = append(msgs, "s:"+sid)
	}
	for _, m := range msgs {
		if err := r.client.Publish(ctx, Channel, m).Err(); err != nil {
			r.log.Warn("revocation publish failed", "error", err)
			return
		}
	}
}
