package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse/handlers"
	"gatehouse/models"
	"gatehouse/services/geoip"
	"gatehouse/services/mail"
	"gatehouse/services/metrics"
	"gatehouse/services/ratelimit"
	"gatehouse/services/revocation"
)

func serveCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, values := newFlagSet("serve", "Runs the portal: pages, the app API, JWKS, health and metrics.")
	if err := fs.Parse(args); err != nil {
		return usageError(fs, err, stdout)
	}
	cfg, err := loadConfig(fs, values, getenv)
	if err != nil {
		return err
	}
	if cfg.CPUProfile != "" {
		stop, err := startCPUProfile(cfg.CPUProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	a, err := loadApp(cfg, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	var places *geoip.Locator // nil locates nothing
	if cfg.GeoIPDB != "" {
		if places, err = geoip.Open(cfg.GeoIPDB); err != nil {
			return err
		}
		defer places.Close()
	}
	a.locate = places.Locate // sign-in notices name the place too
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	tracked := newTrackingListener(ln)
	port := newHandoff(tracked)
	defer port.Close()
	httpCfg := handlers.Config{
		BaseURL: cfg.BaseURL, AppOrigins: cfg.AppOrigins, TrustedProxies: cfg.TrustedProxies, SignupEnabled: cfg.Signup,
		BodyLimit: cfg.BodyLimit, LoginLimitAccount: cfg.LoginLimitAccount, LoginLimitIP: cfg.LoginLimitIP,
		SessionLimit: cfg.SessionLimit, MetricsElsewhere: cfg.MetricsAddr != "",
	}

	// The port answers from the start. While PostgreSQL cannot be reached, a stand-in does
	// (/healthz 200, /readyz 503, 503 unavailable for the rest) and the database is tried again
	// until it answers; connections that arrive during the swap wait for the full app.
	var stand *standIn
	store, err := openStore(ctx, cfg)
	if worthWaitingFor(cfg, err) {
		stand = startStandIn(ctx, handlers.Unavailable(httpCfg, a.log), port.lend())
		store, err = waitForDatabase(stand.ctx, cfg, a.log, err)
		stand.retire(cfg.ShutdownTimeout)
	}
	if err != nil && ctx.Err() != nil {
		return stopBeforeServing(a.log, port, tracked, stand)
	}
	if stand != nil {
		defer func() {
			if err := stand.wait(); err != nil {
				a.log.Warn("stand-in did not stop cleanly", "error", err)
			}
		}()
	}
	if err != nil {
		return err
	}
	obs := &observer{}
	if err := a.useStore(ctx, store, obs); err != nil {
		return err // the deferred a.Close closes the store
	}

	// Revocation checks of bearer tokens answer from a cache that every change invalidates.
	obs.cache = revocation.New(a.store, time.Minute)
	a.auth.SetAccessStates(obs.cache)
	if a.store.Dialect() == models.Postgres {
		go obs.cache.ListenPostgres(ctx, cfg.ListenDatabaseURL, a.log)
	} else {
		go obs.cache.WatchSQLite(ctx, a.store, 20*time.Millisecond, a.log)
	}

	var limiter ratelimit.Limiter = ratelimit.NewMemory(time.Now)
	if cfg.RedisURL != "" {
		opts, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return fmt.Errorf("bad REDIS_URL: %v", err)
		}
		client := redis.NewClient(opts)
		defer client.Close()
		// While Redis is down, limits hold per instance rather than not at all.
		limiter = ratelimit.NewFallback(ratelimit.NewRedis(client), limiter, a.log)
		obs.redis = revocation.NewRedis(client, obs.cache, a.log)
		go obs.redis.Subscribe(ctx)
	}

	sqlDB, err := a.store.SQL()
	if err != nil {
		return err
	}
	obs.metrics = metrics.New(sqlDB.Stats, a.store.CountLiveSessions, obs.cache.Live)
	if cfg.RefreshBatch {
		obs.metrics.CountRefreshBatches(func() metrics.RefreshBatches {
			b := a.auth.RefreshBatchStats()
			return metrics.RefreshBatches{Batches: b.Batches, Shared: b.Shared, Members: b.Members, Failed: b.Failed}
		})
	}

	// Mail: written to the outbox in the action's transaction, delivered here in the background.
	transport, err := mail.NewTransport(cfg.SMTPURL, a.log)
	if err != nil {
		return err
	}
	sender, err := mail.NewSender(mail.Config{From: cfg.MailFrom}, mail.Deps{Store: a.store, Transport: transport,
		Now: time.Now, Random: rand.Reader, Log: a.log, Metrics: obs.metrics.Registerer()})
	if err != nil {
		return err
	}
	a.auth.SetMailer(sender)
	mailDone := make(chan struct{})
	go func() { sender.Run(ctx); close(mailDone) }()
	defer func() { cancel(); <-mailDone }() // Run records the outcome of a message in flight, then returns

	server := handlers.New(httpCfg, handlers.Deps{Auth: a.auth, Limiter: limiter, Log: a.log, Metrics: obs.metrics, Locate: places.Locate}, a.keys.CSRFKey())

	if cfg.PruneInterval > 0 {
		go every(ctx, cfg.PruneInterval, func() { a.prune(ctx) })
	}
	go every(ctx, 30*time.Second, a.reloadKeys)
	if keysInDatabase(cfg) {
		go followKeyChanges(ctx, cfg.ListenDatabaseURL, a.reloadKeys, a.log) // direct, not through PgBouncer
	}

	listenErr := make(chan error, 2)
	if cfg.MetricsAddr != "" {
		stopMetrics, err := serveMetrics(cfg.MetricsAddr, obs.metrics.Handler(), listenErr)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	go func() { listenErr <- fmt.Errorf("listen on %s: %w", cfg.Addr, server.Listener(port)) }()
	if err := a.auth.PasskeysOff(); err != nil {
		a.log.Info("passkeys are off", "reason", err.Error())
	}
	a.log.Info("gatehouse serving", "addr", cfg.Addr, "base_url", cfg.BaseURL.String(), "database", string(a.store.Dialect()))

	select {
	case err := <-listenErr:
		return err
	case <-ctx.Done():
	}
	cancel()
	a.log.Info("stopping: finishing requests in flight", "timeout", cfg.ShutdownTimeout.String())
	stopped := make(chan struct{})
	defer close(stopped)
	go closeSilentUntil(tracked, stopped)
	port.Close() // new connections are refused even if the server has not taken the port yet
	if err := server.ShutdownWithTimeout(cfg.ShutdownTimeout); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	a.auth.Wait() // the writes done after answering (failed sign-in events)
	a.log.Info("stopped")
	return nil
}

// stopBeforeServing is a stop asked for before the database answered: new connections are
// refused at once, silent ones closed, and the stand-in (if any) finishes its answers in flight.
func stopBeforeServing(log *slog.Logger, port *handoff, tracked *trackingListener, stand *standIn) error {
	log.Info("stopping before the database answered")
	port.Close()
	stopped := make(chan struct{})
	defer close(stopped)
	go closeSilentUntil(tracked, stopped)
	if stand != nil {
		if err := stand.wait(); err != nil {
			return err
		}
	}
	log.Info("stopped")
	return nil
}

// closeSilentUntil keeps closing connections that never sent a request while the server stops.
func closeSilentUntil(ln *trackingListener, stopped <-chan struct{}) {
	ticker := time.NewTicker(50 * time.Millisecond)
	defer ticker.Stop()
	for {
		ln.closeSilent()
		select {
		case <-stopped:
			return
		case <-ticker.C:
		}
	}
}

// serveMetrics serves /metrics alone on addr (GATEHOUSE_METRICS_ADDR), so that the portal's public
// address does not expose it; a failure of that listener ends serve through failed.
func serveMetrics(addr string, h http.Handler, failed chan<- error) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (metrics): %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			failed <- fmt.Errorf("serve metrics on %s: %w", addr, err)
		}
	}()
	return func() { _ = srv.Close() }, nil
}
