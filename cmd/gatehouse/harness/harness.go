// Package harness runs the real gatehouse binary as an operator would, for the tests that need a
// process (the browser suite in e2e/, the signal, log and restart tests of cmd/gatehouse) and for
// tools such as the bench. It is the one place that builds ./cmd/gatehouse (once per process),
// serves it on a free loopback port with a fresh database and key directory, waits until a path
// answers 200, keeps the process's output for assertions and failure reports, runs CLI commands
// next to it, and stops it with SIGTERM (or SIGKILL when asked), reporting the exit status. For
// a deployment behind PgBouncer it also makes a database with roles of its own (CreateDatabase)
// and runs pgbouncer in front of it with docs/deploy/pgbouncer.ini (StartPgBouncer).
//
//	srv, err := harness.Start(ctx, harness.Config{Dir: t.TempDir()})  // SQLite, /readyz is 200
//	res, err := srv.Run(ctx, password+"\n", "user", "create", "--email", e, "--password-stdin")
//	line, err := srv.WaitForLog(ctx, harness.MessageIs("stopped"))
//	code, err := srv.Stop(ctx)                                         // SIGTERM, exit status
package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// pollInterval is how often WaitOK asks again.
const pollInterval = 50 * time.Millisecond

// build is the binary Build made for this process.
var build struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Build compiles gatehouse/cmd/gatehouse once per process into a temporary directory and returns
// the binary's path. It runs `go build`, so the working directory must be inside the module, as it
// is under go test and go run. RemoveBuild deletes the directory.
func Build() (string, error) {
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "gatehouse-harness-")
		if build.err != nil {
			return
		}
		build.path = filepath.Join(build.dir, "gatehouse")
		out, err := exec.Command("go", "build", "-o", build.path, "gatehouse/cmd/gatehouse").CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build gatehouse/cmd/gatehouse (run from inside the module): %v\n%s", err, out)
		}
	})
	return build.path, build.err
}

// RemoveBuild deletes what Build made. Call it once nothing runs the binary any more (in TestMain,
// after m.Run).
func RemoveBuild() {
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
}

// Config says how to run one `gatehouse serve`. Only Dir is required.
type Config struct {
	// Dir holds the server's files: its log, and its SQLite database and key directory unless
	// DatabaseURL or Env name others. Several servers may share one Dir.
	Dir string
	// Binary is the gatehouse binary to run; "" is the one Build makes.
	Binary string
	// DatabaseURL is the server's database; "" is a fresh SQLite file in Dir.
	DatabaseURL string
	// Env holds settings over the defaults: GATEHOUSE_ADDR (a free 127.0.0.1 port),
	// GATEHOUSE_BASE_URL (http:// and that address), GATEHOUSE_KEY_DIR (Dir/keys) and
	// GATEHOUSE_LOG_FORMAT (json).
	Env map[string]string
	// Args are flags after "serve".
	Args []string
	// LogDirect has the process write its output straight to the log file rather than through a
	// pipe that this process copies: no CPU here per line (the bench measures its own), but
	// WaitForLog then polls the file instead of waking at each write.
	LogDirect bool
}

// Server is one running `gatehouse serve`.
type Server struct {
	URL     string            // http://127.0.0.1:PORT
	Addr    string            // 127.0.0.1:PORT
	Env     map[string]string // every setting it runs with; Run gives CLI commands the same
	LogPath string            // its stdout and stderr, written as they come

	binary  string
	cmd     *exec.Cmd
	log     *logBuffer
	done    chan struct{} // closed when the process has exited and its output is all read
	waitErr error         // how it exited, once done is closed
}

// Start launches a server and waits until GET /readyz answers 200. ctx bounds the start only, not
// the server's life. When the free port it picked is taken before the server binds it, it tries
// another. A server that does not get ready is killed, and the error holds the end of its log.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	for attempt := 1; ; attempt++ {
		srv, err := Launch(cfg)
		if err != nil {
			return nil, err
		}
		err = srv.WaitOK(ctx, "/readyz")
		if err == nil {
			return srv, nil
		}
		_, _ = srv.Kill()
		if attempt < 3 && cfg.Env["GATEHOUSE_ADDR"] == "" && strings.Contains(srv.Log(), "address already in use") {
			continue
		}
		return nil, fmt.Errorf("gatehouse serve on %s: %w\n%s", srv.Addr, err, srv.LogTail(20))
	}
}

// Launch starts a server without waiting for it: the caller decides what to wait for (WaitOK,
// WaitForLog), e.g. /healthz of a server whose database is not there yet.
func Launch(cfg Config) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("harness: Config.Dir is required")
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	bin := cfg.Binary
	if bin == "" {
		var err error
		if bin, err = Build(); err != nil {
			return nil, err
		}
	}
	addr := cfg.Env["GATEHOUSE_ADDR"]
	if addr == "" {
		var err error
		if addr, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	srv := &Server{
		URL: "http://" + addr, Addr: addr, binary: bin,
		LogPath: filepath.Join(cfg.Dir, "gatehouse-"+strings.NewReplacer(":", "-", "[", "", "]", "").Replace(addr)+".log"),
		done:    make(chan struct{}),
	}
	dbURL := cfg.DatabaseURL
	if dbURL == "" {
		dbURL = "sqlite:" + filepath.Join(cfg.Dir, "gatehouse.db")
	}
	srv.Env = map[string]string{
		"DATABASE_URL":         dbURL,
		"GATEHOUSE_ADDR":       addr,
		"GATEHOUSE_BASE_URL":   srv.URL,
		"GATEHOUSE_KEY_DIR":    filepath.Join(cfg.Dir, "keys"),
		"GATEHOUSE_LOG_FORMAT": "json",
	}
	for k, v := range cfg.Env {
		srv.Env[k] = v
	}

	var err error
	if srv.log, err = newLogBuffer(srv.LogPath); err != nil {
		return nil, err
	}
	srv.cmd = exec.Command(bin, append([]string{"serve"}, cfg.Args...)...)
	srv.cmd.Env = environ(srv.Env)
	srv.cmd.Stdout, srv.cmd.Stderr = srv.log, srv.log // one writer: the lines interleave whole
	if cfg.LogDirect {
		srv.log.direct = true
		srv.cmd.Stdout, srv.cmd.Stderr = srv.log.file, srv.log.file // the child gets the file itself
	}
	if err := srv.cmd.Start(); err != nil {
		srv.log.finish()
		return nil, fmt.Errorf("start gatehouse serve: %w", err)
	}
	go func() {
		srv.waitErr = srv.cmd.Wait()
		srv.log.finish()
		close(srv.done)
	}()
	return srv, nil
}

// WaitOK polls GET path until it answers 200. It fails when the process exits first or when ctx
// ends, saying what the path answered last.
func (s *Server) WaitOK(ctx context.Context, path string) error {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	last := "no answer"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
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
		case <-s.done:
			return fmt.Errorf("exited before GET %s answered 200: %v", path, s.exitError())
		case <-ctx.Done():
			return fmt.Errorf("GET %s not 200 (last: %s): %w", path, last, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// PID is the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Done is closed once the process has exited and all it wrote is in Log.
func (s *Server) Done() <-chan struct{} { return s.done }

// Signal sends sig to the server process.
func (s *Server) Signal(sig os.Signal) error { return s.cmd.Process.Signal(sig) }

// Wait waits until the process exits and returns its exit status (-1 when a signal ended it). It
// fails when ctx ends first, leaving the process running.
func (s *Server) Wait(ctx context.Context) (int, error) {
	select {
	case <-s.done:
		return s.exitCode()
	case <-ctx.Done():
		return -1, fmt.Errorf("gatehouse serve on %s still running: %w", s.Addr, ctx.Err())
	}
}

// Stop sends SIGTERM, as an orchestrator does, and returns the exit status. When ctx ends before
// the process has exited, it is killed and Stop fails. A process that has already exited is not
// signalled; its exit status is returned.
func (s *Server) Stop(ctx context.Context) (int, error) {
	select {
	case <-s.done:
		return s.exitCode()
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return -1, fmt.Errorf("SIGTERM to gatehouse serve on %s: %w", s.Addr, err)
	}
	code, err := s.Wait(ctx)
	if err != nil {
		_, _ = s.Kill()
		return -1, fmt.Errorf("after SIGTERM: %w; killed", err)
	}
	return code, nil
}

// Kill ends the process with SIGKILL (kill -9: no shutdown at all) and returns its exit status.
func (s *Server) Kill() (int, error) {
	if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return -1, fmt.Errorf("SIGKILL to gatehouse serve on %s: %w", s.Addr, err)
	}
	<-s.done
	return s.exitCode()
}

// exitCode is the exit status of the exited process: -1 when a signal ended it, and an error only
// when it could not be waited for at all.
func (s *Server) exitCode() (int, error) {
	var exit *exec.ExitError
	switch {
	case s.waitErr == nil:
		return 0, nil
	case errors.As(s.waitErr, &exit):
		return exit.ExitCode(), nil
	}
	return -1, s.waitErr
}

func (s *Server) exitError() error {
	if s.waitErr == nil {
		return errors.New("exit status 0")
	}
	return s.waitErr
}

// Log is everything the server has written so far to stdout and stderr.
func (s *Server) Log() string { return s.log.String() }

// LogTail is the last n lines of the log, for failure output.
func (s *Server) LogTail(n int) string {
	lines := strings.Split(strings.TrimRight(s.Log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WaitForLog waits for the first line of the log that match accepts, counting lines written
// before the call, and returns it. It fails when the process exits without writing one, or when
// ctx ends first.
func (s *Server) WaitForLog(ctx context.Context, match func(line string) bool) (string, error) {
	return s.log.waitFor(ctx, match)
}

// Run runs `gatehouse args...` as a separate process next to the server, with its settings.
func (s *Server) Run(ctx context.Context, stdin string, args ...string) (Result, error) {
	return CLI{Binary: s.binary, Env: s.Env}.Run(ctx, stdin, args...)
}

// CLI runs gatehouse commands as separate processes, as an operator on the machine would.
type CLI struct {
	Binary string            // "" is the one Build makes
	Env    map[string]string // the settings, e.g. DATABASE_URL and GATEHOUSE_KEY_DIR
}

// Result is what a person sees of one command.
type Result struct {
	Code           int // exit status
	Stdout, Stderr string
}

// String shows the exit status and both streams, for failure messages.
func (r Result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %q\nstderr: %q", r.Code, r.Stdout, r.Stderr)
}

// Run runs `gatehouse args...` with stdin and returns its exit status and output. An exit status
// other than 0 is a Result, not an error; the error says the command could not run or was still
// running when ctx ended (it is then killed).
func (c CLI) Run(ctx context.Context, stdin string, args ...string) (Result, error) {
	cmd, err := c.Command(ctx, args...)
	if err != nil {
		return Result{}, err
	}
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	r := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return r, fmt.Errorf("gatehouse %s: %w", strings.Join(args, " "), ctx.Err())
	case errors.As(err, &exit):
		r.Code = exit.ExitCode()
	case err != nil:
		return r, fmt.Errorf("gatehouse %s: %w", strings.Join(args, " "), err)
	}
	return r, nil
}

// Command is `gatehouse args...` with the CLI's settings, not started: for a caller that wires
// its input and output itself (a terminal, say).
func (c CLI) Command(ctx context.Context, args ...string) (*exec.Cmd, error) {
	bin := c.Binary
	if bin == "" {
		var err error
		if bin, err = Build(); err != nil {
			return nil, err
		}
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = environ(c.Env)
	return cmd, nil
}

// environ is this process's environment without anything that configures Gatehouse or its
// database client (GATEHOUSE_*, DATABASE_URL, REDIS_URL, and libpq's PG* that pgx reads), so that
// nothing a developer exported reaches the binary, plus env.
func environ(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "GATEHOUSE_") || strings.HasPrefix(name, "PG") || name == "DATABASE_URL" || name == "REDIS_URL" {
			continue
		}
		out = append(out, kv)
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// freeAddr is a 127.0.0.1 address with a port nothing listens on at the moment.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
