// Starting before the database (security finding 11): in a deployment PostgreSQL often comes up
// after the service, so serve keeps the port answering and connects once the database does.

package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"gatehouse/models/testdb"
)

// waitingLine is the warning serve logs at each attempt while the database cannot be reached.
const waitingLine = "database not reachable yet; serving 503 until it answers"

// A server started while nothing answers at its database's address is alive (/healthz 200) but
// not ready (/readyz 503), and answers what needs the database with 503 unavailable. When
// PostgreSQL appears at that address the server connects, migrates and serves: an account created
// then signs in. The log said why it waited, naming the host and never the password.
func TestServeStartsBeforePostgres(t *testing.T) {
	db := testdb.Postgres(t)
	real, err := url.Parse(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	away := freeAddr(t) // nothing listens here until the test forwards it to PostgreSQL
	dbURL := *real
	dbURL.Host = away
	if _, set := dbURL.User.Password(); !set {
		// Trust authentication ignores it; it is here so that the log can be searched for it.
		dbURL.User = url.UserPassword(dbURL.User.Username(), "pw-"+rand.Text())
	}
	dbPassword, _ := dbURL.User.Password()

	srv := launchServer(t, dbURL.String(), nil)
	if err := srv.waitOK("/healthz", 30*time.Second); err != nil {
		t.Fatalf("gatehouse serve with the database away: %v\n%s", err, srv.LogTail(20))
	}

	// Before the database answers.
	if r := srv.must(t, "GET", "/readyz", ""); r.Status != http.StatusServiceUnavailable {
		t.Errorf("/readyz before the database answers: %s, want 503", r)
	}
	for _, c := range []struct {
		method, path, body string
		headers            []string
	}{
		{"POST", "/auth/login", loginBody("kim@example.com", password), []string{"X-Device-Id", "kim-phone-0001"}},
		{"POST", "/auth/refresh", "", []string{"Cookie", "gh_refresh=ghr_x"}},
		{"GET", "/api/me", "", []string{"Authorization", "Bearer x"}},
		{"GET", "/.well-known/jwks.json", "", nil},
	} {
		r := srv.must(t, c.method, c.path, c.body, c.headers...)
		if r.Status != http.StatusServiceUnavailable || r.errorCode() != "unavailable" || r.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s before the database answers: %s (Retry-After %q), want 503 unavailable with Retry-After",
				c.method, c.path, r, r.Header.Get("Retry-After"))
		}
	}
	if r := srv.must(t, "GET", "/login", ""); r.Status != http.StatusServiceUnavailable || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Errorf("GET /login before the database answers: %d %s, want a 503 page", r.Status, r.Header.Get("Content-Type"))
	}

	// PostgreSQL comes up at the address the server was given.
	forwardTCP(t, away, real.Host)
	if err := srv.waitOK("/readyz", 60*time.Second); err != nil {
		t.Fatalf("after the database came up: %v\n%s", err, srv.LogTail(20))
	}
	createUser(t, srv.Env, "kim@example.com")
	kim := srv.login(t, "kim@example.com", "kim-phone-0001")
	if r := srv.must(t, "GET", "/api/me", "", "Authorization", "Bearer "+kim.Access); r.Status != http.StatusOK {
		t.Errorf("GET /api/me once the database answers: %s", r)
	}
	if r := srv.must(t, "POST", "/auth/login", loginBody("kim@example.com", "not-kims-password")); r.errorCode() != "invalid_credentials" {
		t.Errorf("a wrong password once the database answers: %s, want 401 invalid_credentials", r)
	}

	if err := srv.stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	checkLog(t, srv.LogPath, map[string]string{"database password": dbPassword})
	if n := countWaitingLines(t, srv.LogPath, away); n == 0 {
		t.Errorf("no %q warning naming host %s in the log", waitingLine, away)
	}
}

// A stop asked for while the server waits for its database is a clean, prompt exit: exit status
// 0 long before the shutdown timeout, even with a client's keep-alive connection open.
func TestServeStopsWhileWaitingForTheDatabase(t *testing.T) {
	srv := launchServer(t, "postgres://postgres@"+freeAddr(t)+"/gatehouse?sslmode=disable", map[string]string{
		"GATEHOUSE_SHUTDOWN_TIMEOUT": "2m",
	})
	if err := srv.waitOK("/healthz", 30*time.Second); err != nil {
		t.Fatalf("gatehouse serve with the database away: %v\n%s", err, srv.LogTail(20))
	}
	if r := srv.must(t, "GET", "/readyz", ""); r.Status != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the database away: %s, want 503", r)
	}
	srv.signal(t, syscall.SIGTERM)
	code, err := srv.wait(time.Minute)
	if err != nil || code != 0 {
		t.Fatalf("after SIGTERM while waiting for the database: exit %d, %v\n%s", code, err, srv.LogTail(10))
	}
	if n := countWaitingLines(t, srv.LogPath, ""); n == 0 {
		t.Errorf("no %q warning in the log", waitingLine)
	}
}

// serve waits only for what waiting cures: a wrong password or a missing database stops it at once
// with one line, while a server that is still starting up is waited for until serve is stopped.
func TestServeWaitsOnlyForWhatWaitingCures(t *testing.T) {
	for _, c := range []struct{ what, code string }{
		{"wrong password", "28P01"},
		{"missing database", "3D000"},
	} {
		t.Run(c.what, func(t *testing.T) {
			addr, _ := fakePostgres(t, c.code)
			env := with(baseEnv(t, "postgres://gatehouse:pw@"+addr+"/gatehouse?sslmode=disable"), map[string]string{"GATEHOUSE_ADDR": freeAddr(t)})
			oneLine(t, cli(t, env, "", "serve"), 1, "gatehouse: open database: ", c.code)
		})
	}
	t.Run("starting up", func(t *testing.T) {
		addr, attempts := fakePostgres(t, "57P03")
		env := with(baseEnv(t, "postgres://gatehouse:pw@"+addr+"/gatehouse?sslmode=disable"), map[string]string{"GATEHOUSE_ADDR": freeAddr(t)})
		ctx, stop := context.WithCancel(context.Background())
		defer stop()
		served := make(chan error, 1)
		go func() {
			served <- run(ctx, []string{"serve"}, func(k string) string { return env[k] }, strings.NewReader(""), io.Discard, io.Discard)
		}()
		for attempt := 1; attempt <= 2; attempt++ {
			select {
			case <-attempts:
			case err := <-served:
				t.Fatalf("serve returned while the database was starting up (attempt %d): %v", attempt, err)
			case <-time.After(30 * time.Second):
				t.Fatalf("no attempt %d to connect within 30s", attempt)
			}
		}
		stop()
		select {
		case err := <-served:
			if err != nil {
				t.Fatalf("serve stopped while waiting: %v, want nil (exit 0)", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("serve did not return within 30s of being stopped")
		}
	})
}

// fakePostgres answers every connection's startup message with a FATAL error of SQLSTATE code, as
// PostgreSQL does for a wrong password (28P01), a missing database (3D000) or while it is starting
// up (57P03). Each attempt is reported on attempts (those nobody reads are dropped).
func fakePostgres(t *testing.T, code string) (addr string, attempts <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan struct{}, 1)
	var conns sync.WaitGroup
	conns.Add(1)
	go func() {
		defer conns.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			backend := pgproto3.NewBackend(c, c)
			if _, err := backend.ReceiveStartupMessage(); err == nil {
				backend.Send(&pgproto3.ErrorResponse{Severity: "FATAL", Code: code, Message: "refused by the test (" + code + ")"})
				backend.Flush()
			}
			c.Close()
			select {
			case seen <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		conns.Wait()
	})
	return ln.Addr().String(), seen
}

// countWaitingLines counts the waiting warnings in a JSON log, those naming host when it is set.
func countWaitingLines(t *testing.T, path, host string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e struct {
			Level, Msg, Host string
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Level == "WARN" && e.Msg == waitingLine && (host == "" || e.Host == host) {
			n++
		}
	}
	return n
}

// forwardTCP listens on addr and pipes each connection to target, as if the database had just come
// up at addr. When the test ends it stops listening and cuts the connections it carries.
func forwardTCP(t *testing.T, addr, target string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("forward %s: %v", addr, err)
	}
	var (
		mu     sync.Mutex
		conns  []net.Conn
		closed bool
		pipes  sync.WaitGroup
	)
	keep := func(c net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			c.Close()
			return false
		}
		conns = append(conns, c)
		return true
	}
	pipe := func(client net.Conn) {
		defer pipes.Done()
		if !keep(client) {
			return
		}
		upstream, err := net.Dial("tcp", target)
		if err != nil {
			client.Close()
			return
		}
		if !keep(upstream) {
			client.Close()
			return
		}
		pipes.Add(1)
		go func() {
			defer pipes.Done()
			io.Copy(upstream, client)
			upstream.Close()
		}()
		io.Copy(client, upstream)
		client.Close()
	}
	pipes.Add(1)
	go func() {
		defer pipes.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			pipes.Add(1)
			go pipe(c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		pipes.Wait()
	})
}
