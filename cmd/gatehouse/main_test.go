// Shared by the command's tests: the command line run in-process exactly as main runs it, and
// the real binary (gatehouse/cmd/gatehouse/harness builds it once, on first use) served on a free
// port for the tests that need a process: signals, a second process on the same database, captured
// logs, a database restart.

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/cmd/gatehouse/harness"
	"gatehouse/models/testdb"
	"gatehouse/services/auth"
)

// password is the password of every account the tests create.
const password = "correct horse battery staple"

func TestMain(m *testing.M) {
	code := m.Run()
	harness.RemoveBuild()
	os.Exit(code)
}

// ---------------------------------------------------------------------------
// The command line, in-process.

// cliResult is what a person sees of one command: its exit status and its two streams.
type cliResult struct {
	code           int
	stdout, stderr string
}

// stderrLines are the non-empty lines the command wrote to stderr.
func (r cliResult) stderrLines() []string {
	var lines []string
	for _, l := range strings.Split(r.stderr, "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d\nstdout: %q\nstderr: %q", r.code, r.stdout, r.stderr)
}

// cli runs `gatehouse args...` in-process as main does: run, then on error one "gatehouse: …"
// line on stderr and exitCode. The environment is env only, never the developer's.
func cli(t *testing.T, env map[string]string, stdin string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, args, func(k string) string { return env[k] }, strings.NewReader(stdin), &stdout, &stderr)
	if ctx.Err() != nil {
		t.Fatalf("gatehouse %s did not return within 60s", strings.Join(args, " "))
	}
	r := cliResult{stdout: stdout.String()}
	if err != nil {
		fmt.Fprintln(&stderr, "gatehouse: "+err.Error())
		r.code = exitCode(err)
	}
	r.stderr = stderr.String()
	return r
}

// baseEnv is the environment every command of a test shares: its database and a key directory of
// its own (never ./keys in the package directory).
func baseEnv(t *testing.T, databaseURL string) map[string]string {
	t.Helper()
	return map[string]string{
		"DATABASE_URL":         databaseURL,
		"GATEHOUSE_KEY_DIR":    filepath.Join(t.TempDir(), "keys"),
		"GATEHOUSE_LOG_FORMAT": "json",
	}
}

// with returns a copy of env with more settings.
func with(env map[string]string, more map[string]string) map[string]string {
	out := make(map[string]string, len(env)+len(more))
	for k, v := range env {
		out[k] = v
	}
	for k, v := range more {
		out[k] = v
	}
	return out
}

// createUser creates an account through the command line, as an operator would.
func createUser(t *testing.T, env map[string]string, email string) {
	t.Helper()
	if r := cli(t, env, password+"\n", "user", "create", "--email", email, "--name", "Test", "--password-stdin"); r.code != 0 {
		t.Fatalf("gatehouse user create --email %s:\n%s", email, r)
	}
}

// newService is an auth.Service on the test's database: a second instance next to the command.
func newService(t *testing.T, db *testdb.DB) *auth.Service {
	t.Helper()
	keys, err := auth.OpenKeyRing(t.TempDir(), rand.Reader, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pw, err := auth.NewPasswords(auth.DefaultPasswordParams, rand.Reader, 2, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return auth.New(auth.Config{
		Issuer: "http://127.0.0.1:8080", AccessTTL: 10 * time.Minute, RefreshIdleTTL: 336 * time.Hour,
		SessionMaxAge: 720 * time.Hour, RefreshGrace: 10 * time.Second,
	}, auth.Deps{Store: db.Store, Keys: keys, Passwords: pw})
}

// ---------------------------------------------------------------------------
// The real binary, serving (through the harness every process test of the repository shares).

// server is one running `gatehouse serve` on a free 127.0.0.1 port, and an HTTP client for it.
type server struct {
	*harness.Server
	client *http.Client
}

// startServer runs `gatehouse serve` on db with a fresh key directory and extra settings, waits
// until /readyz answers 200, and stops it with SIGTERM when the test ends.
func startServer(t *testing.T, databaseURL string, extra map[string]string) *server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h, err := harness.Start(ctx, serverConfig(t, databaseURL, extra))
	if err != nil {
		t.Fatal(err)
	}
	return tracked(t, h)
}

// launchServer is startServer without the wait: the test decides what to wait for.
func launchServer(t *testing.T, databaseURL string, extra map[string]string) *server {
	t.Helper()
	h, err := harness.Launch(serverConfig(t, databaseURL, extra))
	if err != nil {
		t.Fatal(err)
	}
	return tracked(t, h)
}

func serverConfig(t *testing.T, databaseURL string, extra map[string]string) harness.Config {
	return harness.Config{
		Dir: t.TempDir(), DatabaseURL: databaseURL,
		Env: with(map[string]string{"GATEHOUSE_PRUNE_INTERVAL": "0s"}, extra),
	}
}

// tracked gives the server a client and stops it when the test ends, logging the end of its log
// if the test failed.
func tracked(t *testing.T, h *harness.Server) *server {
	srv := &server{Server: h, client: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{}}}
	t.Cleanup(func() {
		if err := srv.stop(30 * time.Second); err != nil {
			t.Errorf("stopping gatehouse serve: %v", err)
		}
		srv.client.CloseIdleConnections()
		if t.Failed() {
			t.Logf("last lines of the server's log:\n%s", srv.LogTail(30))
		}
	})
	return srv
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// pollInterval is how often waitUntil looks again.
const pollInterval = 20 * time.Millisecond

// waitUntil polls check until it reports done. within bounds the wait as a failure condition,
// never a measurement: a check still not done by then is an error naming the last state seen.
func waitUntil(within time.Duration, check func() (done bool, state string)) error {
	deadline := time.Now().Add(within)
	for {
		done, state := check()
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v (last: %s)", within, state)
		}
		time.Sleep(pollInterval)
	}
}

// revocationBound is how long a change made in the database may take to reach a running server's
// access-token checks before a test fails: a failure bound, never a measurement. It stays well
// inside the minute after which the server's revocation cache forgets an entry on its own, so
// that only the change feed can meet it.
const revocationBound = 20 * time.Second

// eventually is waitUntil that fails the test.
func eventually(t *testing.T, within time.Duration, what string, check func() (done bool, state string)) {
	t.Helper()
	if err := waitUntil(within, check); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// waitOK waits until GET path answers 200; within bounds the wait, as a failure.
func (srv *server) waitOK(path string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	return srv.WaitOK(ctx, path)
}

// waitForLog waits until the server logs a line with this "msg", and fails the test if it has
// not within the bound or exits without it.
func (srv *server) waitForLog(t *testing.T, msg string, within time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	line, err := srv.WaitForLog(ctx, harness.MessageIs(msg))
	if err != nil {
		t.Fatalf("waiting for %q in the log: %v\n%s", msg, err, srv.LogTail(10))
	}
	return line
}

// signal sends sig to the server process.
func (srv *server) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := srv.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait waits for the process to exit and returns its exit status; a process still running
// when within has passed is an error (the bound is a failure condition, not a measurement).
func (srv *server) wait(within time.Duration) (exitCode int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	return srv.Wait(ctx)
}

// stop sends SIGTERM and expects exit status 0 within the bound (it kills the process
// otherwise). A server the test already stopped is left as it is: the test checked how.
func (srv *server) stop(within time.Duration) error {
	select {
	case <-srv.Done():
		return nil
	default:
	}
	// The client's spare connections would hold the server until its shutdown timeout
	// (TestGracefulStopDoesNotWaitForIdleConnections): close them first.
	srv.client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	code, err := srv.Stop(ctx)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("exit status %d after SIGTERM", code)
	}
	return nil
}

// gatehouse runs the binary as a separate process with the server's environment, as an operator
// on the same machine would.
func (srv *server) gatehouse(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	return runBinary(t, harness.CLI{Env: srv.Env}, stdin, args...)
}

// runBinary runs `gatehouse args...` as a process of its own and returns what a person sees.
func runBinary(t *testing.T, cli harness.CLI, stdin string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := cli.Run(ctx, stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return cliResult{code: r.Code, stdout: r.Stdout, stderr: r.Stderr}
}

// ---------------------------------------------------------------------------
// The app API, as an app uses it.

// device is one signed-in app on one device: its id, its refresh token and its access token.
type device struct {
	ID      string
	Refresh string
	Access  string
}

// reply is one HTTP answer, read whole.
type reply struct {
	Status    int
	Header    http.Header
	Body      []byte
	Cookies   []*http.Cookie
	RequestID string
}

// errorCode is the "error" of a JSON error body, or "".
func (r reply) errorCode() string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Error
}

// cookie is the value of a cookie the answer set, and whether it set it.
func (r reply) cookie(name string) (string, bool) {
	for _, c := range r.Cookies {
		if c.Name == name {
			return c.Value, true
		}
	}
	return "", false
}

func (r reply) accessToken() string {
	var body struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.Unmarshal(r.Body, &body)
	return body.AccessToken
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.Status, r.Body) }

// do sends one request; headers are name, value pairs.
func (srv *server) do(t *testing.T, method, path string, body string, headers ...string) (reply, error) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := srv.client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: b, Cookies: resp.Cookies(), RequestID: resp.Header.Get("X-Request-Id")}, nil
}

// must is do for requests that have to get an answer.
func (srv *server) must(t *testing.T, method, path string, body string, headers ...string) reply {
	t.Helper()
	r, err := srv.do(t, method, path, body, headers...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func loginBody(email, pw string) string {
	b, _ := json.Marshal(map[string]string{"email": email, "password": pw, "device_name": "test device"})
	return string(b)
}

// login signs in on a device named by X-Device-Id and expects success.
func (srv *server) login(t *testing.T, email, deviceID string) *device {
	t.Helper()
	r := srv.must(t, "POST", "/auth/login", loginBody(email, password), "X-Device-Id", deviceID)
	refresh, _ := r.cookie("gh_refresh")
	if r.Status != http.StatusOK || refresh == "" || r.accessToken() == "" {
		t.Fatalf("login %s on %s: %s (refresh cookie %q)", email, deviceID, r, refresh)
	}
	return &device{ID: deviceID, Refresh: refresh, Access: r.accessToken()}
}

// refresh presents the device's refresh token once.
func (srv *server) refresh(t *testing.T, d *device) (reply, error) {
	t.Helper()
	return srv.do(t, "POST", "/auth/refresh", "", "Cookie", "gh_refresh="+d.Refresh, "X-Device-Id", d.ID)
}

// me is GET /api/me with the device's access token.
func (srv *server) me(t *testing.T, d *device) (reply, error) {
	t.Helper()
	return srv.do(t, "GET", "/api/me", "", "Authorization", "Bearer "+d.Access)
}
