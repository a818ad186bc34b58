// The real gatehouse binary under test: built once by TestMain, served on a
// free 127.0.0.1 port per server, on SQLite and (when configured) PostgreSQL.

package e2e

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for the per-server schemas
)

// envPostgres names the PostgreSQL server the stories also run on, e.g.
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable. CI sets it, and
// under CI=true a missing value fails the suite instead of skipping.
const envPostgres = "GATEHOUSE_TEST_POSTGRES"

// password is the password of every account the stories create.
const password = "correct horse battery staple"

// suite is what TestMain prepares and tears down.
var suite struct {
	tmp    string // removed when the suite ends
	binary string // the gatehouse binary, built once

	mu       sync.Mutex
	shared   map[string]*server // one per database, for the stories with default config
	teardown []func() error     // stops the shared servers and drops their databases
}

// buildGatehouse builds ./cmd/gatehouse into dir and returns the binary's path.
func buildGatehouse(dir string) (string, error) {
	root, err := findRepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "gatehouse")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/gatehouse")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/gatehouse: %v\n%s", err, out)
	}
	return bin, nil
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
// per database but never an account, and their sleeps (token lifetimes)
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

// server is one running `gatehouse serve`.
type server struct {
	URL string   // http://127.0.0.1:PORT
	env []string // the environment of the server, which the CLI commands share

	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed when the process has exited
	waitErr error         // the exit status, once exited is closed

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

// launch starts `gatehouse serve` on a free port and waits until /readyz
// answers 200.
func launch(dir, dbURL string, extra map[string]string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	srv := &server{
		URL:     fmt.Sprintf("http://127.0.0.1:%d", port),
		logPath: filepath.Join(dir, "gatehouse.log"),
		exited:  make(chan struct{}),
	}
	env := map[string]string{
		"GATEHOUSE_ADDR":       fmt.Sprintf("127.0.0.1:%d", port),
		"GATEHOUSE_BASE_URL":   srv.URL,
		"GATEHOUSE_KEY_DIR":    filepath.Join(dir, "keys"),
		"DATABASE_URL":         dbURL,
		"GATEHOUSE_LOG_FORMAT": "json",
	}
	for k, v := range extra {
		env[k] = v
	}
	srv.env = environment(env)

	logFile, err := os.Create(srv.logPath)
	if err != nil {
		return nil, err
	}
	srv.cmd = exec.Command(suite.binary, "serve")
	srv.cmd.Env = srv.env
	srv.cmd.Stdout, srv.cmd.Stderr = logFile, logFile
	if err := srv.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start gatehouse serve: %w", err)
	}
	go func() {
		srv.waitErr = srv.cmd.Wait()
		logFile.Close()
		close(srv.exited)
	}()
	if err := srv.waitReady(20 * time.Second); err != nil {
		_ = srv.stop()
		return nil, fmt.Errorf("gatehouse serve on %s: %w\n%s", srv.URL, err, srv.logTail(20))
	}
	return srv, nil
}

// environment is this process's environment without any Gatehouse setting a
// developer may have exported, plus env.
func environment(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "GATEHOUSE_") || name == "DATABASE_URL" || name == "REDIS_URL" {
			continue
		}
		out = append(out, kv)
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (srv *server) waitReady(timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for {
		resp, err := client.Get(srv.URL + "/readyz")
		if err != nil {
			last = err.Error()
		} else {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		}
		select {
		case <-srv.exited:
			return fmt.Errorf("exited before it was ready: %v", srv.waitErr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("/readyz not 200 after %v (last: %s)", timeout, last)
		}
	}
}

// stop sends SIGTERM and waits for a clean exit (killing after 15s).
func (srv *server) stop() error {
	select {
	case <-srv.exited:
		return srv.waitErr
	default:
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM to gatehouse on %s: %w", srv.URL, err)
	}
	select {
	case <-srv.exited:
		if srv.waitErr != nil {
			return fmt.Errorf("gatehouse on %s exited after SIGTERM: %v\n%s", srv.URL, srv.waitErr, srv.logTail(20))
		}
		return nil
	case <-time.After(15 * time.Second):
		_ = srv.cmd.Process.Kill()
		<-srv.exited
		return fmt.Errorf("gatehouse on %s did not stop within 15s of SIGTERM; killed", srv.URL)
	}
}

// logTail is the last n lines of the server's log.
func (srv *server) logTail(n int) string {
	b, err := os.ReadFile(srv.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logOnFailure logs the end of the server's log if the test fails.
func logOnFailure(t *testing.T, srv *server) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("e2e: last lines of the log of gatehouse on %s:\n%s", srv.URL, srv.logTail(30))
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
	cmd := exec.Command(suite.binary, "user", "create", "--email", email, "--name", name, "--password-stdin")
	cmd.Env = srv.env
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("e2e: gatehouse user create --email %s: %v\n%s", email, err, out)
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
