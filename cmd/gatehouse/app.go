package main

import (
	"context"
	"crypto/rand"
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
	a.useStore(store, observer)
	return a, nil
}

// loadApp loads what the service needs besides the database: the signing keys (created on first
// start) and the password hasher. serve loads them before it waits for the database, so that a
// key directory it cannot use stops it at once.
func loadApp(cfg *Config, stderr io.Writer) (*app, error) {
	keys, err := auth.OpenKeyRing(cfg.KeyDir, rand.Reader, time.Now())
	if err != nil {
		return nil, err
	}
	passwords, err := auth.NewPasswords(auth.DefaultPasswordParams, rand.Reader, cfg.PasswordConcurrency, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &app{cfg: cfg, keys: keys, passwords: passwords, log: newLogger(cfg.LogFormat, stderr)}, nil
}

// useStore builds the auth service on an open store, which the app closes from now on.
func (a *app) useStore(store *models.Store, observer auth.Observer) {
	cfg := a.cfg
	a.store = store
	a.auth = auth.New(auth.Config{
		Issuer: cfg.BaseURL.String(), AccessTTL: cfg.AccessTTL, RefreshIdleTTL: cfg.RefreshIdleTTL,
		SessionMaxAge: cfg.SessionMaxAge, RefreshGrace: cfg.RefreshGrace, ReauthWindow: cfg.ReauthWindow,
		MaxSessions: cfg.MaxSessions, ResetTTL: cfg.ResetTTL, EmailVerification: cfg.EmailVerification,
	}, auth.Deps{Store: store, Keys: a.keys, Passwords: a.passwords, Observer: observer, Log: a.log})
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
