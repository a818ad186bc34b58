// The real gatehouse binary under test: built once by TestMain through
// gatehouse/cmd/gatehouse/harness, served on a free 127.0.0.1 port per server,
// on SQLite and (when configured) PostgreSQL.

package e2e

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for the per-server schemas

	"gatehouse/cmd/gatehouse/harness"
)

// envPostgres names the PostgreSQL server the stories also run on, e.g.
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable. CI sets it, and
// under CI=true a missing value fails the suite instead of skipping.
const envPostgres = "GATEHOUSE_TEST_POSTGRES"

// password is the password of every account the stories create.
const password = "correct horse battery staple"

// suite is what TestMain prepares and tears down.
var suite struct {
	tmp string // removed when the suite ends

	mu       sync.Mutex
	shared   map[string]*server // one per database, for the stories with default config
	teardown []func() error     // stops the shared servers and drops their databases
}

// ---------------------------------------------------------------------------
// Databases.

// database is one kind of database the stories run on: each server gets a
// fresh one of its kind (a SQLite file, or a PostgreSQL schema).
type database struct {
	name     string // "sqlite" or "postgres", the subtest's name
	postgres string // the PostgreSQL server's URL; empty for SQLite
}

// eachDatabase runs a story once per database, as subtests "sqlite" and
// "postgres". PostgreSQL runs when GATEHOUSE_TEST_POSTGRES is set; under
// CI=true its absence is a failure.
//
// Stories run in parallel with each other and per database, as many at once
// as go test's -parallel allows (GOMAXPROCS by default): they share a server
// per database but never an account, and their waits (token lifetimes)
// overlap instead of adding up.
func eachDatabase(t *testing.T, story func(t *testing.T, db database)) {
	t.Helper()
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		story(t, database{name: "sqlite"})
	})
	pg := os.Getenv(envPostgres)
	t.Run("postgres", func(t *testing.T) {
		if pg == "" {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not set, and CI=true requires the PostgreSQL run", envPostgres)
			}
			t.Skipf("%s is not set", envPostgres)
		}
		t.Parallel()
		story(t, database{name: "postgres", postgres: pg})
	})
}

// create makes an empty database for one server (a SQLite file in dir, or a
// new PostgreSQL schema) and returns its DATABASE_URL and how to drop it.
func (db database) create(dir string) (dbURL string, drop func() error, err error) {
	if db.postgres == "" {
		return "sqlite:" + filepath.Join(dir, "gh.db"), func() error { return nil }, nil
	}
	schema := "e2e_" + randomHex(8)
	if err := execPostgres(db.postgres, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, fmt.Errorf("create schema: %w", err)
	}
	drop = func() error { return execPostgres(db.postgres, "DROP SCHEMA "+schema+" CASCADE") }
	u, err := url.Parse(db.postgres)
	if err != nil {
		return "", nil, errors.Join(fmt.Errorf("%s: %w", envPostgres, err), drop())
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}

func execPostgres(dsn, statement string) error {
	conn, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Exec(statement)
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// ---------------------------------------------------------------------------
// Servers.

// server is one running `gatehouse serve`, and the accounts the stories made on it.
type server struct {
	*harness.Server

	mu     sync.Mutex
	emails map[string]int // local part → how many accounts use it
}

// sharedServer is the database's server for the stories that need no special
// configuration: started by the first story that asks, stopped when the suite
// ends. Stories on it use their own accounts (uniqueEmail).
func (db database) sharedServer(t *testing.T) *server {
	t.Helper()
	suite.mu.Lock()
	defer suite.mu.Unlock()
	srv := suite.shared[db.name]
	if srv == nil {
		dir, err := os.MkdirTemp(suite.tmp, "shared-"+db.name+"-")
		if err != nil {
			t.Fatalf("e2e: %v", err)
		}
		dbURL, drop, err := db.create(dir)
		if err != nil {
			t.Fatalf("e2e: %s: %v", db.name, err)
		}
		srv, err = launch(dir, dbURL, nil)
		if err != nil {
			_ = drop()
			t.Fatalf("e2e: %v", err)
		}
		if suite.shared == nil {
			suite.shared = map[string]*server{}
		}
		suite.shared[db.name] = srv
		suite.teardown = append(suite.teardown, func() error { return errors.Join(srv.stop(), drop()) })
	}
	logOnFailure(t, srv)
	return srv
}

func stopSharedServers() {
	for _, stop := range suite.teardown {
		if err := stop(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: shared server: %v\n", err)
		}
	}
}

// startServer runs a server of its own for this test, with a fresh database
// and key dir and env on top of the defaults (e.g. GATEHOUSE_ACCESS_TTL). It
// is stopped with SIGTERM, and its database dropped, when the test ends.
func (db database) startServer(t *testing.T, env map[string]string) *server {
	t.Helper()
	dir := t.TempDir()
	dbURL, drop, err := db.create(dir)
	if err != nil {
		t.Fatalf("e2e: %s: %v", db.name, err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Errorf("e2e: dropping the %s database: %v", db.name, err)
		}
	})
	srv, err := launch(dir, dbURL, env)
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.stop(); err != nil {
			t.Errorf("e2e: %v", err)
		}
	})
	logOnFailure(t, srv)
	return srv
}

// launch starts `gatehouse serve` in dir on dbURL, with env over the
// harness's defaults, and waits until /readyz answers 200.
func launch(dir, dbURL string, env map[string]string) (*server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, err := harness.Start(ctx, harness.Config{Dir: dir, DatabaseURL: dbURL, Env: env})
	if err != nil {
		return nil, err
	}
	return &server{Server: srv}, nil
}

// stop sends SIGTERM and expects exit status 0 (killing the server if it has
// not exited 30s later).
func (srv *server) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, err := srv.Stop(ctx)
	if err == nil && code != 0 {
		err = fmt.Errorf("exit status %d", code)
	}
	if err != nil {
		return fmt.Errorf("gatehouse on %s, stopped with SIGTERM: %v\n%s", srv.URL, err, srv.LogTail(20))
	}
	return nil
}

// logOnFailure logs the end of the server's log if the test fails.
func logOnFailure(t *testing.T, srv *server) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("e2e: last lines of the log of gatehouse on %s:\n%s", srv.URL, srv.LogTail(30))
		}
	})
}

// ---------------------------------------------------------------------------
// Accounts.

// uniqueEmail is local@example.com, or local2@example.com, … when the server
// already has that one (shared servers outlive a story, e.g. with -count=2).
func (srv *server) uniqueEmail(local string) string {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.emails == nil {
		srv.emails = map[string]int{}
	}
	srv.emails[local]++
	if n := srv.emails[local]; n > 1 {
		return fmt.Sprintf("%s%d@example.com", local, n)
	}
	return local + "@example.com"
}

// createUser creates an account with the CLI, as an operator would:
// `gatehouse user create --email E --name N --password-stdin`.
func createUser(t *testing.T, srv *server, email, password string) {
	t.Helper()
	name, _, _ := strings.Cut(email, "@")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := srv.Run(ctx, password+"\n", "user", "create", "--email", email, "--name", name, "--password-stdin")
	if err != nil || r.Code != 0 {
		t.Fatalf("e2e: gatehouse user create --email %s: %v\n%s", email, err, r)
	}
}

// newAccount creates an account for a story's person ("ann" → ann@example.com)
// and returns its email; the password is the package's password.
func newAccount(t *testing.T, srv *server, person string) string {
	t.Helper()
	email := srv.uniqueEmail(person)
	createUser(t, srv, email, password)
	return email
}
