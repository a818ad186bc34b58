package models_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
	sqlite3 "modernc.org/sqlite/lib"

	"gatehouse/models"
	"gatehouse/models/testdb"
)

// How database errors are classified (models.translate): by the drivers' codes and error values,
// into ErrNotFound, ErrConflict and ErrUnavailable, each wrapping the driver's error.

var sentinels = []error{models.ErrNotFound, models.ErrConflict, models.ErrUnavailable}

// classOf names the one sentinel err wraps: "" for none, "several" for more than one.
func classOf(err error) string {
	class := ""
	for _, s := range sentinels {
		if errors.Is(err, s) {
			if class != "" {
				return "several"
			}
			class = s.Error()
		}
	}
	return class
}

func wantClass(t *testing.T, what string, err, want error) {
	t.Helper()
	wantName := ""
	if want != nil {
		wantName = want.Error()
	}
	if got := classOf(err); got != wantName {
		t.Errorf("%s: classified %q, want %q (%v)", what, got, wantName, err)
	}
}

func TestTranslateClassifies(t *testing.T) {
	pg := func(code string) error {
		return &pgconn.PgError{Severity: "ERROR", Code: code, Message: "from the server"}
	}
	for _, c := range []struct {
		name string
		err  error
		want error
	}{
		{"record not found", gorm.ErrRecordNotFound, models.ErrNotFound},
		{"no rows", sql.ErrNoRows, models.ErrNotFound},
		{"23505 unique_violation", pg("23505"), models.ErrConflict},
		{"08000 connection_exception", pg("08000"), models.ErrUnavailable},
		{"08006 connection_failure", pg("08006"), models.ErrUnavailable},
		{"40001 serialization_failure", pg("40001"), models.ErrUnavailable},
		{"40P01 deadlock_detected", pg("40P01"), models.ErrUnavailable},
		{"53300 too_many_connections", pg("53300"), models.ErrUnavailable},
		{"57014 query_canceled", pg("57014"), models.ErrUnavailable},
		{"57P01 admin_shutdown", pg("57P01"), models.ErrUnavailable},
		{"57P02 crash_shutdown", pg("57P02"), models.ErrUnavailable},
		{"57P03 cannot_connect_now", pg("57P03"), models.ErrUnavailable},
		{"57P05 idle_session_timeout", pg("57P05"), models.ErrUnavailable},
		{"23503 foreign_key_violation", pg("23503"), nil},
		{"28P01 invalid_password", pg("28P01"), nil},
		{"3D000 invalid_catalog_name", pg("3D000"), nil},
		{"57P04 database_dropped", pg("57P04"), nil},
		{"42P01 undefined_table", pg("42P01"), nil},
		{"a server error wrapping a broken socket", fmt.Errorf("startup: %w: %w", pg("28P01"), io.ErrUnexpectedEOF), nil},
		{"io.EOF", io.EOF, models.ErrUnavailable},
		{"io.ErrUnexpectedEOF", fmt.Errorf("receive message: %w", io.ErrUnexpectedEOF), models.ErrUnavailable},
		{"driver.ErrBadConn", driver.ErrBadConn, models.ErrUnavailable},
		{"pgconn.ErrConnClosed", fmt.Errorf("conn closed: %w", pgconn.ErrConnClosed), models.ErrUnavailable},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}, models.ErrUnavailable},
		{"deadline", fmt.Errorf("timeout: %w", context.DeadlineExceeded), models.ErrUnavailable},
		{"cancelled", context.Canceled, nil},
		// Message text classifies nothing.
		{"a unique violation's words", errors.New("UNIQUE constraint failed: users.email"), nil},
		{"a lock's words", errors.New("database is locked"), nil},
		{"a refusal's words", errors.New("dial tcp: connection refused"), nil},
	} {
		got := models.Translate(c.err)
		wantClass(t, c.name, got, c.want)
		if !errors.Is(got, c.err) {
			t.Errorf("%s: %v does not wrap the original %v", c.name, got, c.err)
		}
		if again := models.Translate(got); again.Error() != got.Error() {
			t.Errorf("%s: translated twice: %q, once: %q", c.name, again, got)
		}
	}
	if models.Translate(nil) != nil {
		t.Errorf("Translate(nil) is not nil")
	}
}

// Real errors of each database, through the store's methods where one can produce them.
func TestTranslateRealErrors(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		createUser(t, db, "alice")
		insert := `INSERT INTO users (id, email, password_hash, created_at, updated_at) VALUES (?, ?, 'x', ?, ?)`

		err := models.Translate(db.Store.DB().Exec(insert, "alice-2", "alice@example.com", now, now).Error)
		wantClass(t, "unique violation", err, models.ErrConflict)
		wantCode := map[string]any{"postgres": "23505", "sqlite": sqlite3.SQLITE_CONSTRAINT_UNIQUE}[db.Name]
		if code := driverCode(err); code != wantCode {
			t.Errorf("unique violation: code %v underneath, want %v", code, wantCode)
		}
		err = models.Translate(db.Store.DB().Exec(insert, "alice", "alice-2@example.com", now, now).Error)
		wantClass(t, "primary key violation", err, models.ErrConflict)

		// A foreign-key violation is a bug, not a conflict to report to a user.
		err = db.Store.CreateSession(ctx, session("s-1", "nobody", "d1", now))
		wantClass(t, "foreign-key violation", err, nil)
		wantCode = map[string]any{"postgres": "23503", "sqlite": sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY}[db.Name]
		if code := driverCode(err); code != wantCode {
			t.Errorf("foreign-key violation: code %v underneath, want %v (%v)", code, wantCode, err)
		}

		// A deadline that passed while serving is 503; a request its client gave up is not.
		expired, cancel := context.WithDeadline(ctx, now)
		defer cancel()
		_, err = db.Store.UserByID(expired, "alice")
		wantClass(t, "past deadline", err, models.ErrUnavailable)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("past deadline: %v does not wrap context.DeadlineExceeded", err)
		}
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		_, err = db.Store.UserByID(cancelled, "alice")
		wantClass(t, "cancelled", err, nil)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled: %v does not wrap context.Canceled", err)
		}
	})
}

// SQLite's "unavailable": another connection (another process) holds the write lock for longer
// than the busy timeout.
func TestSQLiteBusyIsUnavailable(t *testing.T) {
	db := testdb.SQLite(t)
	ctx := t.Context()
	_, dsn, err := models.ParseDatabaseURL(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	// The same file, with no busy timeout: the second writer is refused at once.
	other, err := sql.Open("sqlite", strings.Replace(dsn, "busy_timeout(10000)", "busy_timeout(0)", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	err = db.Store.InTx(ctx, func(tx *models.Store) error {
		createUserIn(t, tx, "alice") // takes the write lock until the transaction ends
		_, err := other.ExecContext(ctx, `INSERT INTO users (id, email, password_hash, created_at, updated_at) VALUES ('bob', 'bob@example.com', 'x', ?, ?)`, now, now)
		if err == nil {
			t.Fatalf("a second writer was let in while the first held the lock")
		}
		err = models.Translate(err)
		wantClass(t, "busy", err, models.ErrUnavailable)
		if code, ok := driverCode(err).(int); !ok || code&0xff != sqlite3.SQLITE_BUSY {
			t.Errorf("busy: code %v underneath, want SQLITE_BUSY (%v)", driverCode(err), err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func createUserIn(t *testing.T, store *models.Store, id string) {
	t.Helper()
	u := &models.User{ID: id, Email: id + "@example.com", PasswordHash: "x", TokenVersion: 1, CreatedAt: now, UpdatedAt: now}
	if err := store.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("create user %s: %v", id, err)
	}
}

// A PostgreSQL connection that ends in the middle of a transaction (the server terminated it, or
// the network dropped it) is ErrUnavailable, through the store's methods and InTx.
func TestPostgresLostConnectionIsUnavailable(t *testing.T) {
	t.Run("terminated by the server", func(t *testing.T) {
		db := testdb.Postgres(t)
		ctx := t.Context()
		createUser(t, db, "alice")
		var during error
		err := db.Store.InTx(ctx, func(tx *models.Store) error {
			pid, err := backendPID(ctx, tx)
			if err != nil {
				return err
			}
			// From another connection of the pool; waits (up to 10 s) until the backend is gone.
			var gone bool
			if err := db.Store.DB().WithContext(ctx).Raw("SELECT pg_terminate_backend(?, 10000)", pid).Scan(&gone).Error; err != nil || !gone {
				t.Fatalf("terminate backend %d: %v, %v", pid, gone, err)
			}
			_, during = tx.UserByID(ctx, "alice")
			return during
		})
		wantClass(t, "query on the terminated connection", during, models.ErrUnavailable)
		wantClass(t, "InTx", err, models.ErrUnavailable)
		t.Logf("terminated: %v", during)
		if _, err := db.Store.UserByID(ctx, "alice"); err != nil {
			t.Errorf("the pool did not recover: %v", err)
		}
	})

	t.Run("closed under the driver", func(t *testing.T) {
		var mu sync.Mutex
		var conns []net.Conn
		dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
			return c, err
		}
		db := testdb.PostgresWith(t, models.Options{Dial: dial})
		ctx := t.Context()
		createUser(t, db, "alice")
		var during error
		err := db.Store.InTx(ctx, func(tx *models.Store) error {
			if _, err := tx.UserByID(ctx, "alice"); err != nil {
				return err
			}
			mu.Lock()
			for _, c := range conns { // every connection the pool made, the transaction's among them
				c.Close()
			}
			mu.Unlock()
			_, during = tx.UserByID(ctx, "alice")
			return during
		})
		wantClass(t, "query on the closed connection", during, models.ErrUnavailable)
		wantClass(t, "InTx", err, models.ErrUnavailable)
		t.Logf("closed: %v", during)
	})
}

// A PostgreSQL query that runs out of time, by the server's statement_timeout or the request's
// deadline, is ErrUnavailable.
func TestPostgresQueryTimeoutIsUnavailable(t *testing.T) {
	db := testdb.Postgres(t)
	ctx := t.Context()
	createUser(t, db, "alice")

	err := db.Store.InTx(ctx, func(tx *models.Store) error {
		if err := tx.DB().Exec("SET LOCAL statement_timeout = '50ms'").Error; err != nil {
			return err
		}
		return tx.DB().Exec("SELECT pg_sleep(60)").Error
	})
	wantClass(t, "statement_timeout", err, models.ErrUnavailable)
	if code := driverCode(err); code != "57014" {
		t.Errorf("statement_timeout: code %v underneath, want 57014", code)
	}

	// A request that waits, past its deadline, for a row another transaction holds.
	holding, release := make(chan struct{}), make(chan struct{})
	holder := make(chan error, 1)
	go func() {
		holder <- db.Store.InTx(ctx, func(tx *models.Store) error {
			if _, err := tx.LockUser(ctx, "alice"); err != nil {
				return err
			}
			close(holding)
			<-release
			return nil
		})
	}()
	select {
	case <-holding:
	case err := <-holder:
		t.Fatalf("holder: %v", err)
	}
	deadline, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err = db.Store.InTx(deadline, func(tx *models.Store) error {
		_, err := tx.LockUser(deadline, "alice")
		return err
	})
	close(release)
	if err := <-holder; err != nil {
		t.Fatalf("holder: %v", err)
	}
	wantClass(t, "deadline while waiting for a row lock", err, models.ErrUnavailable)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deadline: %v does not wrap context.DeadlineExceeded", err)
	}
}

// OpenContext tells a server that cannot be reached (ErrUnavailable: waiting may cure it) from
// one that answered no (any other error). None of these needs a PostgreSQL server but the last.
func TestOpenPostgresUnreachable(t *testing.T) {
	ctx := t.Context()
	open := func(ctx context.Context, addr string) error {
		store, err := models.OpenContext(ctx, "postgres://postgres@"+addr+"/gatehouse?sslmode=disable&connect_timeout=10", models.Options{})
		if err == nil {
			store.Close()
		}
		return err
	}

	// Refused: nothing listens on the port any more.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := l.Addr().String()
	l.Close()
	wantClass(t, "refused", open(ctx, refused), models.ErrUnavailable)

	// Hung up: a server that accepts and closes at once, as one going down does.
	hangUp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hangUp.Close()
	go func() {
		for {
			c, err := hangUp.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	wantClass(t, "hung up", open(ctx, hangUp.Addr().String()), models.ErrUnavailable)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	wantClass(t, "cancelled", open(cancelled, refused), nil)

	base := testdb.PostgresURL(t)
	if base == "" {
		return
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/no_such_database_" + strings.ReplaceAll(t.Name(), "/", "_")
	store, err := models.OpenContext(ctx, u.String(), models.Options{})
	if err == nil {
		store.Close()
		t.Fatalf("opened a database that does not exist")
	}
	wantClass(t, "missing database", err, nil)
	if code := driverCode(err); code != "3D000" {
		t.Errorf("missing database: code %v underneath, want 3D000 (%v)", code, err)
	}
}
