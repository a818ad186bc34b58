package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"gatehouse/models"
	"gatehouse/services/auth"
)

// The server's defaults, which the bench does not change and the direct service must share.
const (
	accessTTL      = 10 * time.Minute
	refreshIdleTTL = 336 * time.Hour
	sessionMaxAge  = 720 * time.Hour
	refreshGrace   = 10 * time.Second
)

// direct reaches the same database without HTTP: its own store (a pool of the server's size) and
// an auth.Service on the server's key directory, both in this process.
type direct struct {
	store     *models.Store
	svc       *auth.Service
	successor []byte // the refresh-successor key, derived as services/auth derives it
}

func openDirect(databaseURL, keyDir, issuer string) (*direct, error) {
	store, err := models.Open(databaseURL, models.Options{MaxOpenConns: serverPoolSize})
	if err != nil {
		return nil, err
	}
	keys, err := auth.OpenKeyRing(keyDir, rand.Reader, time.Now())
	if err != nil {
		store.Close()
		return nil, err
	}
	passwords, err := auth.NewPasswords(auth.DefaultPasswordParams, rand.Reader, 2, 5*time.Second)
	if err != nil {
		store.Close()
		return nil, err
	}
	successor, err := successorKey(keyDir)
	if err != nil {
		store.Close()
		return nil, err
	}
	svc := auth.New(auth.Config{Issuer: issuer, AccessTTL: accessTTL, RefreshIdleTTL: refreshIdleTTL,
		SessionMaxAge: sessionMaxAge, RefreshGrace: refreshGrace}, auth.Deps{Store: store, Keys: keys, Passwords: passwords})
	return &direct{store: store, svc: svc, successor: successor}, nil
}

func (d *direct) close() { d.store.Close() }

// successorKey derives the key that turns a refresh token into its successor, from the key
// directory's secret, the way services/auth does (HMAC-SHA256(secret, "gatehouse/refresh-successor")).
// The limit then does the same hashing per rotation as the service; were the derivation to drift,
// only the cost comparison would, since the limit's chains never go back to the service.
func successorKey(keyDir string) ([]byte, error) {
	secret, err := os.ReadFile(filepath.Join(keyDir, "secret.key"))
	if err != nil {
		return nil, fmt.Errorf("read the server secret: %w", err)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("gatehouse/refresh-successor"))
	return mac.Sum(nil), nil
}

// successorOf is the token that rotating token yields: "ghr_" + base64url(HMAC-SHA256(key, token)).
func (d *direct) successorOf(token string) string {
	mac := hmac.New(sha256.New, d.successor)
	mac.Write([]byte(token))
	return "ghr_" + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

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
// prepared statement with the same parameters, and nothing else (no access token is signed).
func (d *direct) rotateInOneStatement(ctx context.Context, dev *device) outcome {
	now := time.Now().UTC().Truncate(time.Microsecond)
	next := d.successorOf(dev.refresh)
	hash, nextHash := sha256.Sum256([]byte(dev.refresh)), sha256.Sum256([]byte(next))
	_, err := d.store.RotateInOneStatement(ctx, models.RotateParams{
		Hash: hash[:], SuccessorHash: nextHash[:], Now: now, IdleExpiry: now.Add(refreshIdleTTL),
		DeviceID: dev.id, IP: "127.0.0.1",
	})
	if err != nil {
		return failed
	}
	dev.refresh = next
	dev.rotations++
	return succeeded
}

// refreshThroughService is svc.Refresh without HTTP: the statement plus signing an access token.
func (d *direct) refreshThroughService(ctx context.Context, dev *device) outcome {
	issued, err := d.svc.Refresh(ctx, dev.refresh, auth.Client{DeviceID: dev.id, UserAgent: "gatehouse-bench", IP: "127.0.0.1"})
	if err != nil || issued.RefreshToken == dev.refresh || issued.AccessToken == "" {
		return failed
	}
	dev.refresh, dev.access = issued.RefreshToken, issued.AccessToken
	dev.rotations++
	return succeeded
}

// limitCell: each worker rotates its own chain with the one statement, for d.
func (b *bench) limitCell(ctx context.Context, workers int, d time.Duration) cell {
	return drive(ctx, cellLimit, workers, d, b.server.pid(), func(ctx context.Context, w, _ int) outcome {
		return b.direct.rotateInOneStatement(ctx, b.directDevices[w])
	})
}

// serviceCell: each worker refreshes its own chain through the service, in this process, for d.
func (b *bench) serviceCell(ctx context.Context, workers int, d time.Duration) cell {
	return drive(ctx, cellService, workers, d, b.server.pid(), func(ctx context.Context, w, _ int) outcome {
		return b.direct.refreshThroughService(ctx, b.directDevices[w])
	})
}
