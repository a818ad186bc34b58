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
	cfg   *Config
	store *models.Store
	keys  *auth.KeyRing
	auth  *auth.Service
	log   *slog.Logger
}

// openApp connects to the database and loads the keys; migrate tells whether to bring the schema up to date.
func openApp(ctx context.Context, cfg *Config, stderr io.Writer, observer auth.Observer) (*app, error) {
	store, err := models.Open(cfg.DatabaseURL, models.Options{MaxOpenConns: cfg.DBMaxConns})
	if err != nil {
		return nil, err
	}
	keys, err := auth.OpenKeyRing(cfg.KeyDir, rand.Reader, time.Now())
	if err != nil {
		store.Close()
		return nil, err
	}
	passwords, err := auth.NewPasswords(auth.DefaultPasswordParams, rand.Reader, cfg.PasswordConcurrency, 5*time.Second)
	if err != nil {
		store.Close()
		return nil, err
	}
	svc := auth.New(auth.Config{
		Issuer: cfg.BaseURL.String(), AccessTTL: cfg.AccessTTL, RefreshIdleTTL: cfg.RefreshIdleTTL,
		SessionMaxAge: cfg.SessionMaxAge, RefreshGrace: cfg.RefreshGrace, ReauthWindow: cfg.ReauthWindow,
	}, auth.Deps{Store: store, Keys: keys, Passwords: passwords, Observer: observer})
	return &app{cfg: cfg, store: store, keys: keys, auth: svc, log: newLogger(cfg.LogFormat, stderr)}, nil
}

func (a *app) Close() error { return a.store.Close() }

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
