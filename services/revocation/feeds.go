package revocation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"

	"gatehouse/models"
)

// Channel is the PostgreSQL NOTIFY channel and the Redis pub/sub channel of revocations.
const Channel = "gatehouse_revocation"

// ListenPostgres keeps a LISTEN connection open and applies every notification to the cache
// until ctx ends. While disconnected the cache is off (database reads), and it reconnects by itself.
//
// The cache turns on only once a notification sent from another connection has arrived on the
// LISTEN one (probeFeed). Through PgBouncer in transaction mode LISTEN is accepted and a NOTIFY on
// the same connection even comes back (it runs on the same server connection), but notifications
// from any other connection never reach this client: PgBouncer 1.18 drops them, closing the
// server connection ("got packet 'A' from server when not linked"), or passes them to whichever
// client holds that server connection at the time. A feed that cannot LISTEN (that, or a server
// that refuses LISTEN) is reported once, naming GATEHOUSE_LISTEN_DATABASE_URL, and tried again now
// and then; meanwhile every check reads the database, which is correct, only slower.
func (c *Cache) ListenPostgres(ctx context.Context, dsn string, log *slog.Logger) {
	backoff := 100 * time.Millisecond
	cannot := false // a cannot-listen warning was logged, and the feed has not worked since
	for ctx.Err() == nil {
		err := c.listenOnce(ctx, dsn, func() {
			backoff = 100 * time.Millisecond
			if cannot {
				log.Info("revocation feed listening: access-token checks answer from the cache again")
				cannot = false
			}
		})
		c.SetLive(false)
		if ctx.Err() != nil {
			return
		}
		wait := backoff
		var refused *cannotListen
		switch {
		case errors.As(err, &refused):
			if !cannot {
				log.Warn("revocation feed cannot LISTEN on this connection (PgBouncer in transaction mode?): set GATEHOUSE_LISTEN_DATABASE_URL to a direct PostgreSQL URL; until then every access-token check reads the database",
					"reason", refused.Error(), "retry_in", cannotListenRetry.String())
				cannot = true
			}
			wait = cannotListenRetry
		default:
			log.Warn("revocation feed lost; verifying against the database until it is back", "error", err)
			backoff = min(backoff*2, 5*time.Second)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// probeWait bounds how long the feed waits for its probe to come back before deciding that the
// connection cannot LISTEN; cannotListenRetry is how often it tries again after that (quietly).
var (
	probeWait         = 3 * time.Second
	cannotListenRetry = time.Minute
)

// probePrefix starts the payload of a probe: a notification a feed sends itself, which every
// feed ignores (the cache's messages are "u:…" and "s:…").
const probePrefix = "p:"

// cannotListen is a feed whose LISTEN the server refused, or whose probe never came back.
type cannotListen struct {
	reason string
	err    error
}

func (e *cannotListen) Error() string {
	if e.err != nil {
		return e.reason + ": " + e.err.Error()
	}
	return e.reason
}

func (e *cannotListen) Unwrap() error { return e.err }

// listenOnce connects, LISTENs, proves with a probe that notifications arrive, turns the cache on
// (calling live), and applies notifications until the connection fails or ctx ends.
func (c *Cache) listenOnce(ctx context.Context, dsn string, live func()) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		if refusedListen(err) {
			return &cannotListen{reason: "the server refused LISTEN", err: err}
		}
		return err
	}
	if err := c.probeFeed(ctx, conn, dsn); err != nil {
		return err
	}
	c.SetLive(true)
	live()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		c.receive(n.Payload)
	}
}

// refusedListen tells a server (or pooler) that refuses LISTEN from one that went away while
// asked: connection exceptions (class 08), operator intervention (57: shutdown, cancel) and
// insufficient resources (53) are worth retrying soon; any other error the server sent is a refusal.
func refusedListen(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	for _, class := range []string{"08", "53", "57"} {
		if strings.HasPrefix(pgErr.Code, class) {
			return false
		}
	}
	return true
}

// probeFeed sends a notification with a fresh nonce from a second connection to the same URL
// and waits, up to probeWait, for it to arrive on the listening conn; notifications that arrive
// meanwhile are applied. A second connection, not conn itself: through a transaction pooler a
// NOTIFY on conn runs on the server connection that LISTENed, and would come back even though
// no other client's notification ever will.
func (c *Cache) probeFeed(ctx context.Context, conn *pgx.Conn, dsn string) error {
	nonce := make([]byte, 12)
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	probe := probePrefix + hex.EncodeToString(nonce)
	sender, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	// Without arguments Exec uses the simple protocol: no prepared statement, whatever the URL's
	// default_query_exec_mode, since a pooler may hand this connection a server connection on
	// which another client already prepared the same statement name.
	_, err = sender.Exec(ctx, "NOTIFY "+Channel+", '"+probe+"'")
	sender.Close(context.Background())
	if err != nil {
		return err
	}
	waitCtx, cancel := context.WithTimeout(ctx, probeWait)
	defer cancel()
	for {
		n, err := conn.WaitForNotification(waitCtx)
		switch {
		case err != nil && ctx.Err() == nil && waitCtx.Err() != nil:
			return &cannotListen{reason: fmt.Sprintf("a notification sent from another connection did not arrive within %v", probeWait)}
		case err != nil:
			return err
		case n.Payload == probe:
			return nil
		}
		c.receive(n.Payload)
	}
}

// receive applies one notification of the feed, ignoring probes (this feed's or another's).
func (c *Cache) receive(payload string) {
	if strings.HasPrefix(payload, probePrefix) {
		return
	}
	c.apply(payload)
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
