package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"gatehouse/models"
	"gatehouse/services/auth"
)

// direct reaches a database without HTTP: its own store (a pool of the server's size) and an
// auth.Service on the server's key directory and configuration, both in this process.
type direct struct {
	store *models.Store
	svc   *auth.Service
	cfg   serverConfig
}

// openDirect opens the store and the service. now is the service's clock (nil: the real one); a
// clock in the past signs access tokens that have expired.
func openDirect(databaseURL, keyDir, issuer string, cfg serverConfig, now func() time.Time) (*direct, error) {
	store, err := models.Open(databaseURL, models.Options{MaxOpenConns: cfg.dbMaxConns})
	if err != nil {
		return nil, err
	}
	keys, err := auth.OpenKeyRing(keyDir, rand.Reader, time.Now())
	if err != nil {
		store.Close()
		return nil, err
	}
	// This service hashes passwords only to sign the bench's devices in, one at a time, before
	// any cell: its hash slots and their wait do not matter.
	passwords, err := auth.NewPasswords(auth.DefaultPasswordParams, rand.Reader, 1, time.Minute)
	if err != nil {
		store.Close()
		return nil, err
	}
	svc := auth.New(auth.Config{Issuer: issuer, AccessTTL: cfg.accessTTL, RefreshIdleTTL: cfg.refreshIdleTTL,
		SessionMaxAge: cfg.sessionMaxAge, RefreshGrace: cfg.refreshGrace, ReauthWindow: cfg.reauthWindow,
		MaxSessions: cfg.maxSessions}, auth.Deps{Store: store, Keys: keys, Passwords: passwords, Now: now})
	return &direct{store: store, svc: svc, cfg: cfg}, nil
}

func (d *direct) close() { d.store.Close() }

// signInDevices signs in n devices named prefix-NN through the service, spread over the accounts.
func (d *direct) signInDevices(ctx context.Context, accounts []account, prefix string, n int) ([]*device, error) {
	devices := make([]*device, n)
	for i := range n {
		dev := &device{id: fmt.Sprintf("%s-%02d", prefix, i)}
		a := accounts[i%len(accounts)]
		issued, err := d.svc.SignIn(ctx, a.email, a.password, auth.Client{DeviceID: dev.id, DeviceName: "Bench " + dev.id, UserAgent: "gatehouse-bench", IP: "127.0.0.1"})
		if err != nil {
			return nil, fmt.Errorf("sign in %s through the service: %w", dev.id, err)
		}
		dev.refresh, dev.access = issued.RefreshToken, issued.AccessToken
		devices[i] = dev
	}
	return devices, nil
}

// rotateInOneStatement is the limit: the rotation the service does on its happy path, as one
// prepared statement with the parameters the service passes (the successor from the service
// itself, SHA-256 of both tokens as they are stored, the idle expiry of the server's
// configuration), and nothing else: no access token is signed. The statement finds no live
// token it may rotate (models.ErrNotFound) when the service would refuse it.
func (d *direct) rotateInOneStatement(ctx context.Context, dev *device) outcome {
	now := time.Now().UTC().Truncate(time.Microsecond)
	presented := dev.refresh
	next := d.svc.SuccessorOf(presented)
	hash, nextHash := sha256.Sum256([]byte(presented)), sha256.Sum256([]byte(next))
	_, err := d.store.RotateInOneStatement(ctx, models.RotateParams{
		Hash: hash[:], SuccessorHash: nextHash[:], Now: now, IdleExpiry: now.Add(d.cfg.refreshIdleTTL),
		DeviceID: dev.id, IP: "127.0.0.1",
	})
	switch {
	case errors.Is(err, models.ErrNotFound):
		dev.refused(presented)
		return failed
	case err != nil:
		return failed
	}
	dev.rotated(presented, next, "")
	return succeeded
}

// refreshThroughService is svc.Refresh without HTTP: the statement plus signing an access token.
func (d *direct) refreshThroughService(ctx context.Context, dev *device) outcome {
	presented := dev.refresh
	issued, err := d.svc.Refresh(ctx, presented, auth.Client{DeviceID: dev.id, UserAgent: "gatehouse-bench", IP: "127.0.0.1"})
	switch {
	case errors.Is(err, auth.ErrInvalidToken) || errors.Is(err, auth.ErrTokenReused) ||
		errors.Is(err, auth.ErrTokenExpired) || errors.Is(err, auth.ErrSessionRevoked):
		dev.refused(presented)
		return failed
	case err != nil || issued.RefreshToken == presented || issued.AccessToken == "":
		return failed
	}
	dev.rotated(presented, issued.RefreshToken, issued.AccessToken)
	return succeeded
}

// mintAccessTokens refreshes each device's chain n times through the service, all devices at
// once, and returns each device's n access tokens. They are valid on the server (same keys, same
// issuer, live sessions) and the server has never verified them.
func (d *direct) mintAccessTokens(ctx context.Context, devices []*device, n int) ([][]string, error) {
	tokens := make([][]string, len(devices))
	errs := make([]error, len(devices))
	var wg sync.WaitGroup
	for i, dev := range devices {
		wg.Go(func() {
			for range n {
				if d.refreshThroughService(ctx, dev) != succeeded {
					errs[i] = fmt.Errorf("mint access tokens: refresh of device %s through the service failed", dev.id)
					return
				}
				tokens[i] = append(tokens[i], dev.access)
			}
		})
	}
	wg.Wait()
	return tokens, errors.Join(errs...)
}

// limitOp: each worker rotates its own chain with the one statement.
func (b *bench) limitOp() op {
	return func(ctx context.Context, w, _ int) outcome {
		return b.direct.rotateInOneStatement(ctx, b.directDevices[w])
	}
}

// serviceOp: each worker refreshes its own chain through the service, in this process.
func (b *bench) serviceOp() op {
	return func(ctx context.Context, w, _ int) outcome {
		return b.direct.refreshThroughService(ctx, b.directDevices[w])
	}
}
