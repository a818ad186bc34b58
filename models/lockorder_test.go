package models_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"gatehouse/models"
	"gatehouse/models/testdb"
)

// The row locks of PostgreSQL, and why LockUser takes FOR NO KEY UPDATE: every INSERT into a
// table that references users (device_sessions, security_events) checks its foreign key with
// SELECT ... FOR KEY SHARE on the user's row. FOR UPDATE conflicts with that; FOR NO KEY UPDATE
// does not, and still conflicts with itself and with UPDATE users, so sign-ins of one user queue.

var lockNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func lockUser(t *testing.T, store *models.Store) *models.User {
	t.Helper()
	u := &models.User{ID: "user-1", Email: "user@example.com", PasswordHash: "not-a-hash", TokenVersion: 1, CreatedAt: lockNow, UpdatedAt: lockNow}
	if err := store.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("create user: %v", err)
	}
	return u
}

func lockSession(id, userID, deviceID string) *models.DeviceSession {
	return &models.DeviceSession{ID: id, UserID: userID, DeviceID: deviceID, DeviceName: "Firefox on Linux",
		CreatedAt: lockNow, LastUsedAt: lockNow, ExpiresAt: lockNow.Add(24 * time.Hour), AuthenticatedAt: lockNow,
		TokenHash: []byte("token-of-" + id), TokenExpiresAt: lockNow.Add(time.Hour)}
}

// backendPID is the PostgreSQL backend serving the transaction tx is bound to.
func backendPID(ctx context.Context, tx *models.Store) (int, error) {
	var pid int
	if err := tx.DB().WithContext(ctx).Raw("SELECT pg_backend_pid()").Scan(&pid).Error; err != nil {
		return 0, fmt.Errorf("backend pid: %w", err)
	}
	return pid, nil
}

// waitBlockedBy waits until backend waiter waits for a lock that backend holder holds (waiter 0:
// any backend). It returns false if finished closes first: the waiting transaction ended without
// ever waiting.
func waitBlockedBy(t *testing.T, store *models.Store, waiter, holder int, finished <-chan struct{}) bool {
	t.Helper()
	query, args := "SELECT ?::int = ANY(pg_blocking_pids(?::int))", []any{holder, waiter}
	if waiter == 0 {
		query, args = "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE ?::int = ANY(pg_blocking_pids(pid)))", []any{holder}
	}
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		var blocked bool
		if err := store.DB().WithContext(t.Context()).Raw(query, args...).Scan(&blocked).Error; err != nil {
			t.Fatalf("read pg_blocking_pids: %v", err)
		}
		if blocked {
			return true
		}
		select {
		case <-finished:
			return false
		case <-t.Context().Done():
			t.Fatalf("waiting for backend %d to block on backend %d: %v", waiter, holder, t.Context().Err())
		case <-tick.C:
		}
	}
}

// txRun runs fn in a transaction on its own goroutine. pid receives the transaction's backend
// before fn runs; done its result; finished closes after done has it.
type txRun struct {
	pid      chan int
	done     chan error
	finished chan struct{}
}

func startTx(ctx context.Context, store *models.Store, fn func(tx *models.Store) error) *txRun {
	r := &txRun{pid: make(chan int, 1), done: make(chan error, 1), finished: make(chan struct{})}
	go func() {
		defer close(r.finished)
		r.done <- store.InTx(ctx, func(tx *models.Store) error {
			pid, err := backendPID(ctx, tx)
			if err != nil {
				return err
			}
			r.pid <- pid
			return fn(tx)
		})
	}()
	return r
}

// pidOf waits for the transaction's backend pid, failing the test if it ended before telling.
func (r *txRun) pidOf(t *testing.T, name string) int {
	t.Helper()
	select {
	case pid := <-r.pid:
		return pid
	case err := <-r.done:
		t.Fatalf("%s ended before it began: %v", name, err)
		return 0
	}
}

// holdTx runs fn in a transaction and keeps that transaction open after fn, holding its locks,
// until release is called. It returns once fn has run, with the transaction's backend.
func holdTx(t *testing.T, ctx context.Context, store *models.Store, name string, fn func(tx *models.Store) error) (run *txRun, pid int, release func()) {
	t.Helper()
	did, released := make(chan struct{}), make(chan struct{})
	run = startTx(ctx, store, func(tx *models.Store) error {
		if err := fn(tx); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		close(did)
		select {
		case <-released:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	pid = run.pidOf(t, name)
	select {
	case <-did:
	case err := <-run.done:
		t.Fatalf("%s ended before it was done: %v", name, err)
	}
	var once sync.Once
	return run, pid, func() { once.Do(func() { close(released) }) }
}

func isDeadlock(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "40P01"
}

// TestLockUserDoesNotDeadlockWithForeignKeyChecks replays, step by step, the deadlock CI once hit
// in TestRotationProperties ("device-1-1: sign in: ERROR: deadlock detected (SQLSTATE 40P01)"):
//
//	B (sign out a device, Logout, a replay)      A (sign in on that device)
//	UPDATE device_sessions: revoke session S
//	                                              LockUser: lock the user's row
//	                                              RevokeSession(S): waits for B's row lock on S
//	INSERT security_events: the foreign-key
//	check takes FOR KEY SHARE on the user's row
//
// With FOR UPDATE in LockUser, B's KEY SHARE waits for A, A waits for B, and PostgreSQL aborts one
// of them. With FOR NO KEY UPDATE, B commits, and A then finds S revoked and carries on.
func TestLockUserDoesNotDeadlockWithForeignKeyChecks(t *testing.T) {
	db := testdb.Postgres(t)
	store, ctx := db.Store, t.Context()
	user := lockUser(t, store)
	old := lockSession("session-old", user.ID, "device-1")
	if err := store.CreateSession(ctx, old); err != nil {
		t.Fatalf("create session: %v", err)
	}

	bRevoked, aWaits := make(chan struct{}), make(chan struct{})
	b := startTx(ctx, store, func(tx *models.Store) error {
		if _, err := tx.RevokeSession(ctx, old.ID, models.EventSignedOut, lockNow); err != nil {
			return fmt.Errorf("B: revoke session: %w", err)
		}
		close(bRevoked)
		select {
		case <-aWaits:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := tx.RecordEvent(ctx, &models.SecurityEvent{UserID: user.ID, SessionID: old.ID, Kind: models.EventSignedOut, CreatedAt: lockNow}); err != nil {
			return fmt.Errorf("B: record event: %w", err)
		}
		return nil
	})
	bPID := b.pidOf(t, "B")
	select {
	case <-bRevoked:
	case err := <-b.done:
		t.Fatalf("B ended before revoking the session: %v", err)
	}

	replacement := lockSession("session-new", user.ID, "device-1")
	var aRevoked bool
	a := startTx(ctx, store, func(tx *models.Store) error {
		if _, err := tx.LockUser(ctx, user.ID); err != nil {
			return fmt.Errorf("A: lock user: %w", err)
		}
		var err error
		if aRevoked, err = tx.RevokeSession(ctx, old.ID, "replaced", lockNow); err != nil {
			return fmt.Errorf("A: revoke session: %w", err)
		}
		if err := tx.CreateSession(ctx, replacement); err != nil {
			return fmt.Errorf("A: create session: %w", err)
		}
		if err := tx.RecordEvent(ctx, &models.SecurityEvent{UserID: user.ID, SessionID: replacement.ID, Kind: models.EventSignedIn, CreatedAt: lockNow}); err != nil {
			return fmt.Errorf("A: record event: %w", err)
		}
		return nil
	})
	aPID := a.pidOf(t, "A")
	if !waitBlockedBy(t, store, aPID, bPID, a.finished) {
		close(aWaits)
		t.Fatalf("A finished without waiting for B's lock on the session (%v): the test no longer sets up the cycle", <-a.done)
	}
	close(aWaits) // A holds the user's row and waits for S: now B checks its foreign key

	errA, errB := <-a.done, <-b.done
	for _, r := range []struct {
		name string
		err  error
	}{{"A (lock user, then revoke the session)", errA}, {"B (revoke the session, then record an event)", errB}} {
		switch {
		case isDeadlock(r.err):
			t.Errorf("%s: the two transactions deadlocked: %v", r.name, r.err)
		case r.err != nil:
			t.Errorf("%s: %v", r.name, r.err)
		}
	}
	if t.Failed() {
		return
	}

	if aRevoked {
		t.Errorf("A revoked session %s again after B had revoked it", old.ID)
	}
	got, err := store.SessionByID(ctx, old.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.RevokedAt == nil || got.RevokedReason != models.EventSignedOut {
		t.Errorf("session %s: revoked at %v for %q, want revoked for %q by B", old.ID, got.RevokedAt, got.RevokedReason, models.EventSignedOut)
	}
	live, err := store.LiveSessionOnDevice(ctx, user.ID, "device-1")
	if err != nil || live.ID != replacement.ID {
		t.Errorf("live session on device-1: %+v, %v; want %s", live, err, replacement.ID)
	}
	if n := db.Count(t, "SELECT COUNT(*) FROM security_events WHERE user_id = ?", user.ID); n != 2 {
		t.Errorf("%d security events, want 2 (B's sign-out and A's sign-in)", n)
	}
}

// TestLockUserQueuesTransactionsOfOneUser: what LockUser is for. While one transaction holds the
// user's row, a second LockUser of that user waits, and carries on once the first commits.
func TestLockUserQueuesTransactionsOfOneUser(t *testing.T) {
	db := testdb.Postgres(t)
	store, ctx := db.Store, t.Context()
	user := lockUser(t, store)

	first, firstPID, release := holdTx(t, ctx, store, "first", func(tx *models.Store) error {
		_, err := tx.LockUser(ctx, user.ID)
		return err
	})

	second := startTx(ctx, store, func(tx *models.Store) error {
		if _, err := tx.LockUser(ctx, user.ID); err != nil {
			return fmt.Errorf("second: lock user: %w", err)
		}
		return nil
	})
	secondPID := second.pidOf(t, "second")
	if !waitBlockedBy(t, store, secondPID, firstPID, second.finished) {
		release()
		t.Fatalf("a second LockUser of one user did not wait for the first transaction (%v)", <-second.done)
	}
	release()
	if err := <-first.done; err != nil {
		t.Errorf("first: %v", err)
	}
	if err := <-second.done; err != nil {
		t.Errorf("second, after the first committed: %v", err)
	}
}

// TestRotateInOneStatementBehindASignOutEverywhere: the one-statement rotation reads the user's
// token_version from its statement's snapshot, without locking the user's row. That is sound
// because every transaction that bumps token_version (a password change or reset, sign-out
// everywhere, an undone email change, a disable) also revokes every live session of the user.
// A rotation whose snapshot predates such a transaction either runs wholly before it, or waits for
// the session's row lock that transaction holds and then, re-checking the latest version of the
// row, finds it revoked and rotates nothing: it never signs an access token with the version the
// transaction replaced. Here the rotation starts while the sign-out-everywhere holds the row.
func TestRotateInOneStatementBehindASignOutEverywhere(t *testing.T) {
	db := testdb.Postgres(t)
	store, ctx := db.Store, t.Context()
	user := lockUser(t, store)
	session := lockSession("session-1", user.ID, "device-1")
	if err := store.CreateSession(ctx, session); err != nil {
		t.Fatalf("create session: %v", err)
	}

	everywhere, holder, release := holdTx(t, ctx, store, "sign-out everywhere", func(tx *models.Store) error {
		_, _, err := tx.SignOutEverywhere(ctx, user.ID, models.EventSignedOutEverywhere, lockNow)
		return err
	})

	type result struct {
		r   *models.Rotation
		err error
	}
	rotated, rotateDone := make(chan result, 1), make(chan struct{})
	go func() {
		defer close(rotateDone)
		r, err := store.RotateInOneStatement(ctx, models.RotateParams{
			Hash: session.TokenHash, SuccessorHash: []byte("successor"), Now: lockNow.Add(time.Minute),
			IdleExpiry: lockNow.Add(2 * time.Hour), IP: "198.51.100.7", DeviceID: "device-1",
		})
		rotated <- result{r, err}
	}()
	if !waitBlockedBy(t, store, 0, holder, rotateDone) {
		release()
		res := <-rotated
		t.Fatalf("the rotation did not wait for the sign-out everywhere's lock on the session (rotation %+v, %v): the test no longer sets up the race", res.r, res.err)
	}
	release()
	if err := <-everywhere.done; err != nil {
		t.Fatalf("sign-out everywhere: %v", err)
	}
	res := <-rotated
	switch {
	case res.err == nil:
		t.Errorf("the rotation went through after the sign-out everywhere, with token_version %d (the user's is now %d)", res.r.TokenVersion, user.TokenVersion+1)
	case !errors.Is(res.err, models.ErrNotFound):
		t.Errorf("rotation: %v, want ErrNotFound (the guard refuses: the caller decides in a transaction)", res.err)
	}
}
