package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"golang.org/x/term"

	"gatehouse/models"
	"gatehouse/services/auth"
)

// app is what every command builds from the configuration.
type app struct {
	cfg       *Config
	store     *models.Store
	keys      *auth.KeyRing
	passwords *auth.Passwords
	auth      *auth.Service
	log       *slog.Logger
	locate    func(ip string) string // GATEHOUSE_GEOIP_DB, for sign-in notices (serve only); nil: none
}

// openApp connects to the database and loads the keys.
func openApp(ctx context.Context, cfg *Config, stderr io.Writer, observer auth.Observer) (*app, error) {
	store, err := models.Open(cfg.DatabaseURL, models.Options{MaxOpenConns: cfg.DBMaxConns})
	if err != nil {
		return nil, err
	}
	a, err := loadApp(cfg, stderr)
	if err != nil {
		store.Close()
		return nil, err
	}
	if err := a.useStore(ctx, store, observer); err != nil {
		store.Close()
		return nil, err
	}
	return a, nil
}

// keysInDatabase: on PostgreSQL with a master key, the signing keys and the server secret live in
// the database (sealed under it); otherwise in GATEHOUSE_KEY_DIR.
func keysInDatabase(cfg *Config) bool {
	dialect, _, err := models.ParseDatabaseURL(cfg.DatabaseURL)
	return err == nil && dialect == models.Postgres && cfg.MasterKey != ""
}

// loadApp loads what the service needs besides the database: the signing keys (created on first
// start) and the password hasher. serve loads them before it waits for the database, so that a
// key directory it cannot use stops it at once.
func loadApp(cfg *Config, stderr io.Writer) (*app, error) {
	if cfg.MasterKey != "" && !keysInDatabase(cfg) {
		return nil, errors.New("GATEHOUSE_MASTER_KEY keeps keys in PostgreSQL; the embedded SQLite default keeps them in GATEHOUSE_KEY_DIR: unset it")
	}
	var keys *auth.KeyRing // with keys in the database: loaded once the database answers (useStore)
	if !keysInDatabase(cfg) {
		var err error
		if keys, err = auth.OpenKeyRing(cfg.KeyDir, rand.Reader, time.Now()); err != nil {
			return nil, err
		}
	}
	passwords, err := auth.NewPasswords(auth.DefaultPasswordParams, rand.Reader, cfg.PasswordConcurrency, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &app{cfg: cfg, keys: keys, passwords: passwords, log: newLogger(cfg.LogFormat, stderr)}, nil
}

// useStore builds the auth service on an open store, which the app closes from now on; with keys
// in the database it loads them first (creating them on a first start).
func (a *app) useStore(ctx context.Context, store *models.Store, observer auth.Observer) error {
	cfg := a.cfg
	a.store = store
	if keysInDatabase(cfg) {
		master, err := auth.ParseMasterKeys(cfg.MasterKey)
		if err != nil {
			return fmt.Errorf("GATEHOUSE_MASTER_KEY: %w", err)
		}
		if _, err := store.Migrate(ctx); err != nil { // the key tables must exist before the keys are read
			return err
		}
		if a.keys, err = auth.OpenDatabaseKeyRing(ctx, store, master, rand.Reader, time.Now()); err != nil {
			return fmt.Errorf("keys in the database: %w", err)
		}
	}
	a.auth = auth.New(auth.Config{
		Issuer: cfg.BaseURL.String(), AccessTTL: cfg.AccessTTL, RefreshIdleTTL: cfg.RefreshIdleTTL,
		SessionMaxAge: cfg.SessionMaxAge, RefreshGrace: cfg.RefreshGrace, ReauthWindow: cfg.ReauthWindow,
		MaxSessions: cfg.MaxSessions, ResetTTL: cfg.ResetTTL, EmailVerification: cfg.EmailVerification,
		RefreshBatch: cfg.RefreshBatch,
	}, auth.Deps{Store: store, Keys: a.keys, Passwords: a.passwords, Observer: observer, Log: a.log, Locate: a.locate})
	return nil
}

// Close closes the store, if the app has one.
func (a *app) Close() error {
	if a.store == nil {
		return nil
	}
	return a.store.Close()
}

// newLogger logs JSON unless asked for text or writing to a terminal.
func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}
