package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"time"

	"github.com/gofiber/fiber/v2"

	"gatehouse/models"
)

// connectTimeout bounds one attempt to reach PostgreSQL, so that a host that drops packets is
// tried again, and logged, every few seconds rather than after the system's TCP timeout.
const connectTimeout = 10 * time.Second

// Waiting for the database starts at firstRetry between attempts and doubles up to maxRetry.
const (
	firstRetry = 250 * time.Millisecond
	maxRetry   = 5 * time.Second
)

// openStore connects to the database and brings its schema up to date.
func openStore(ctx context.Context, cfg *Config) (*models.Store, error) {
	connectCtx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	store, err := models.OpenContext(connectCtx, cfg.DatabaseURL, models.Options{MaxOpenConns: cfg.DBMaxConns})
	if err != nil {
		return nil, err
	}
	if _, err := store.Migrate(ctx); err != nil {
		store.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return store, nil
}

// worthWaitingFor tells whether serve should wait for the database rather than stop: PostgreSQL
// could not be reached, or went away during the migration. A wrong password, a missing database
// or a failed migration is not cured by waiting, and SQLite is a file with no server to wait for.
func worthWaitingFor(cfg *Config, err error) bool {
	dialect, _, _ := models.ParseDatabaseURL(cfg.DatabaseURL)
	return dialect == models.Postgres && errors.Is(err, models.ErrUnavailable)
}

// waitForDatabase tries openStore again, with a capped backoff, for as long as the failure is
// worth waiting for. It returns the store, the first failure that is not, or ctx's cause once ctx
// ends. Each attempt logs one warning naming the database's host, never its URL.
func waitForDatabase(ctx context.Context, cfg *Config, log *slog.Logger, err error) (*models.Store, error) {
	host := databaseHost(cfg.DatabaseURL)
	began := time.Now()
	delay := firstRetry
	for attempt := 1; worthWaitingFor(cfg, err); attempt++ {
		log.Warn("database not reachable yet; serving 503 until it answers",
			"host", host, "attempt", attempt, "retry_in", delay.String(), "error", err)
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-time.After(delay):
		}
		delay = min(2*delay, maxRetry)
		var store *models.Store
		if store, err = openStore(ctx, cfg); err == nil {
			log.Info("database reachable; schema up to date", "host", host, "waited", time.Since(began).Round(time.Millisecond).String())
			return store, nil
		}
	}
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	return nil, err
}

// databaseHost is the host:port part of DATABASE_URL, for the log: the URL itself may hold a password.
func databaseHost(databaseURL string) string {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return ""
	}
	return u.Host
}

// standIn is handlers.Unavailable serving a loan of the port while serve waits for the database.
type standIn struct {
	app       *fiber.App
	loan      net.Listener
	ctx       context.Context // the wait: ends with serve's, or with the stand-in's listen error as cause
	served    chan struct{}   // closed when the app has stopped serving
	retired   chan struct{}   // closed when retire is done
	retireErr error           // set before retired is closed
}

// startStandIn serves app on loan. If it stops serving on its own (the socket failed), the wait
// ends with that error.
func startStandIn(ctx context.Context, app *fiber.App, loan net.Listener) *standIn {
	ctx, stopWaiting := context.WithCancelCause(ctx)
	s := &standIn{app: app, loan: loan, ctx: ctx, served: make(chan struct{}), retired: make(chan struct{})}
	go func() {
		defer close(s.served)
		if err := app.Listener(loan); err != nil {
			stopWaiting(fmt.Errorf("listen on %s: %w", loan.Addr(), err))
		}
	}()
	return s
}

// retire starts retiring the stand-in in the background: the loan ends, so that it takes no new
// connection (those wait for the next app), and the requests it holds get up to timeout to finish.
func (s *standIn) retire(timeout time.Duration) {
	go func() {
		defer close(s.retired)
		s.loan.Close()
		err := s.app.ShutdownWithTimeout(timeout)
		<-s.served
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			s.retireErr = fmt.Errorf("stop the stand-in: %w", err)
		}
	}()
}

// wait returns once the stand-in has retired.
func (s *standIn) wait() error {
	<-s.retired
	return s.retireErr
}
