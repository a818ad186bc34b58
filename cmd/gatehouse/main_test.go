// Shared by the command's tests: the command line run in-process exactly as main runs it, and
// the real binary (built once, on first use) served on a free port for the tests that need a
// process: signals, a second process on the same database, captured logs, a database restart.

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gatehouse/models/testdb"
	"gatehouse/services/auth"
)

// password is the password of every account the tests create.
const password = "correct horse battery staple"

// binary is the gatehouse binary, built by the first test that needs it.
var binary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binary.dir != "" {
		os.RemoveAll(binary.dir)
	}
	os.Exit(code)
}

// gatehouseBinary builds ./cmd/gatehouse once per test run and returns its path.
func gatehouseBinary(t testing.TB) string {
	t.Helper()
	binary.once.Do(func() {
		binary.dir, binary.err = os.MkdirTemp("", "gatehouse-test-bin-")
		if binary.err != nil {
			return
		}
		binary.path = filepath.Join(binary.dir, "gatehouse")
		out, err := exec.Command("go", "build", "-o", binary.path, ".").CombinedOutput()
		if err != nil {
			binary.err = fmt.Errorf("go build ./cmd/gatehouse: %v\n%s", err, out)
		}
	})
	if binary.err != nil {
		t.Fatal(binary.err)
	}
	return binary.path
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
// The real binary, serving.

// server is one running `gatehouse serve` on a free 127.0.0.1 port.
type server struct {
	URL     string            // http://127.0.0.1:PORT
	Addr    string            // 127.0.0.1:PORT
	Env     map[string]string // its environment; commands run next to it share it
	LogPath string            // its stderr and stdout

	cmd     *exec.Cmd
	client  *http.Client
	exited  chan struct{} // closed when the process has exited
	waitErr error         // its exit status, once exited is closed
}

// startServer runs `gatehouse serve` on db with a fresh key directory and extra settings, waits
// until /readyz answers 200, and stops it with SIGTERM when the test ends.
func startServer(t *testing.T, databaseURL string, extra map[string]string) *server {
	t.Helper()
	srv := launchServer(t, databaseURL, extra)
	if err := srv.waitOK("/readyz", 30*time.Second); err != nil {
		t.Fatalf("gatehouse serve on %s: %v\n%s", srv.URL, err, srv.logTail(20))
	}
	return srv
}

// launchServer is startServer without the wait: the test decides what to wait for.
func launchServer(t *testing.T, databaseURL string, extra map[string]string) *server {
	t.Helper()
	bin := gatehouseBinary(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	srv := &server{
		URL: "http://" + addr, Addr: addr, LogPath: filepath.Join(dir, "gatehouse.log"),
		exited: make(chan struct{}),
		client: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{}},
	}
	srv.Env = with(map[string]string{
		"DATABASE_URL":             databaseURL,
		"GATEHOUSE_ADDR":           addr,
		"GATEHOUSE_BASE_URL":       srv.URL,
		"GATEHOUSE_KEY_DIR":        filepath.Join(dir, "keys"),
		"GATEHOUSE_LOG_FORMAT":     "json",
		"GATEHOUSE_PRUNE_INTERVAL": "0s",
	}, extra)
	logFile, err := os.Create(srv.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	srv.cmd = exec.Command(bin, "serve")
	srv.cmd.Env = environ(srv.Env)
	srv.cmd.Stdout, srv.cmd.Stderr = logFile, logFile
	if err := srv.cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start gatehouse serve: %v", err)
	}
	go func() {
		srv.waitErr = srv.cmd.Wait()
		logFile.Close()
		close(srv.exited)
	}()
	t.Cleanup(func() {
		if err := srv.stop(20 * time.Second); err != nil {
			t.Errorf("stopping gatehouse serve: %v", err)
		}
		srv.client.CloseIdleConnections()
		if t.Failed() {
			t.Logf("last lines of the server's log:\n%s", srv.logTail(30))
		}
	})
	return srv
}

// environ is a process environment of PATH and HOME (go needs them) plus env, so that no setting a
// developer exported leaks into the binary.
func environ(env map[string]string) []string {
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
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

// waitOK polls GET path until it answers 200, the process exits, or timeout passes.
func (srv *server) waitOK(path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		resp, err := srv.client.Get(srv.URL + path)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-srv.exited:
			return fmt.Errorf("exited before it was ready: %v", srv.waitErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not 200 after %v (last: %s)", path, timeout, last)
}

// signal sends sig to the server process.
func (srv *server) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := srv.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait waits up to timeout for the process to exit and returns its exit status.
func (srv *server) wait(timeout time.Duration) (exitCode int, err error) {
	select {
	case <-srv.exited:
	case <-time.After(timeout):
		return -1, fmt.Errorf("still running %v later", timeout)
	}
	if srv.waitErr == nil {
		return 0, nil
	}
	var exit *exec.ExitError
	if errors.As(srv.waitErr, &exit) {
		return exit.ExitCode(), nil
	}
	return -1, srv.waitErr
}

// stop sends SIGTERM and expects a clean exit within timeout (it kills the process otherwise).
func (srv *server) stop(timeout time.Duration) error {
	select {
	case <-srv.exited:
		return nil // the test stopped it and checked how
	default:
	}
	// The client's spare connections would hold the server until its shutdown timeout
	// (TestGracefulStopDoesNotWaitForIdleConnections): close them first.
	srv.client.CloseIdleConnections()
	_ = srv.cmd.Process.Signal(syscall.SIGTERM)
	code, err := srv.wait(timeout)
	if err != nil {
		_ = srv.cmd.Process.Kill()
		<-srv.exited
		return fmt.Errorf("after SIGTERM: %v; killed", err)
	}
	if code != 0 {
		return fmt.Errorf("exit status %d after SIGTERM", code)
	}
	return nil
}

func (srv *server) log() string {
	b, err := os.ReadFile(srv.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}

func (srv *server) logTail(n int) string {
	lines := strings.Split(strings.TrimRight(srv.log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// gatehouse runs the binary as a separate process with the server's environment, as an operator
// on the same machine would.
func (srv *server) gatehouse(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, gatehouseBinary(t), args...)
	cmd.Env = environ(srv.Env)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("gatehouse %s: %v", strings.Join(args, " "), err)
	}
	return r
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
