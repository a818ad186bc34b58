package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// benchSettings configure the served binary for the bench; everything else is the default.
var benchSettings = []string{
	// Sign-in limits out of the way: the login cells measure argon2id, not the limiter.
	"GATEHOUSE_LOGIN_LIMIT_IP=1000000000/1h",
	"GATEHOUSE_LOGIN_LIMIT_ACCOUNT=1000000000/1h",
	// Each bench client refreshes one session as fast as it can: no per-session limit.
	"GATEHOUSE_SESSION_LIMIT=off",
	// The default pool, stated: the direct cells open the same size.
	"GATEHOUSE_DB_MAX_CONNS=" + strconv.Itoa(serverPoolSize),
	// No background prune in the middle of a cell.
	"GATEHOUSE_PRUNE_INTERVAL=0s",
	"GATEHOUSE_SHUTDOWN_TIMEOUT=5s",
	"GATEHOUSE_LOG_FORMAT=json",
}

// serverPoolSize is the server's default PostgreSQL pool (GATEHOUSE_DB_MAX_CONNS).
const serverPoolSize = 16

// serverSetup is what every gatehouse process of one run shares: binary, database, keys and
// the settings chosen by flags (GATEHOUSE_PASSWORD_CONCURRENCY, which bounds the login cells).
type serverSetup struct {
	bin, dir, databaseURL, keyDir string
	settings                      []string
}

// env is the bench's own environment (PATH, HOME, …) without any Gatehouse setting of the
// person running it, plus the run's database and key directory and extra.
func (s serverSetup) env(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GATEHOUSE_") || strings.HasPrefix(kv, "DATABASE_URL=") || strings.HasPrefix(kv, "REDIS_URL=") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "DATABASE_URL="+s.databaseURL, "GATEHOUSE_KEY_DIR="+s.keyDir)
	env = append(env, benchSettings...)
	env = append(env, s.settings...)
	return append(env, extra...)
}

// buildServer builds cmd/gatehouse into dir, unless a binary was given.
func buildServer(ctx context.Context, given, dir string) (string, error) {
	if given != "" {
		return filepath.Abs(given)
	}
	bin := filepath.Join(dir, "gatehouse")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "gatehouse/cmd/gatehouse").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build gatehouse/cmd/gatehouse (run the bench from the module): %v\n%s", err, out)
	}
	return bin, nil
}

// account is a user the bench created, with the password it signs in with.
type account struct{ email, password string }

// createUser runs `gatehouse user create`, which also migrates the fresh database.
func createUser(ctx context.Context, s serverSetup, a account, name string) error {
	cmd := exec.CommandContext(ctx, s.bin, "user", "create", "--email", a.email, "--name", name, "--password-stdin")
	cmd.Env = s.env()
	cmd.Stdin = strings.NewReader(a.password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("gatehouse user create --email %s: %v\n%s", a.email, err, out)
	}
	return nil
}

// server is a running `gatehouse serve`.
type server struct {
	cmd     *exec.Cmd
	baseURL string
	logPath string
	exited  chan struct{} // closed when the process has ended
	waitErr error
}

// startServer starts `gatehouse serve` on a free loopback port and waits until /readyz answers.
func startServer(ctx context.Context, s serverSetup, extraEnv ...string) (*server, error) {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(s.dir, "serve-"+strings.ReplaceAll(addr, ":", "-")+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(s.bin, "serve")
	cmd.Env = s.env(append([]string{"GATEHOUSE_ADDR=" + addr}, extraEnv...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start gatehouse serve: %w", err)
	}
	srv := &server{cmd: cmd, baseURL: "http://" + addr, logPath: logPath, exited: make(chan struct{})}
	go func() {
		srv.waitErr = cmd.Wait()
		logFile.Close()
		close(srv.exited)
	}()
	if err := srv.waitReady(ctx, 60*time.Second); err != nil {
		srv.stop()
		return nil, err
	}
	return srv, nil
}

func (s *server) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("gatehouse serve exited at start (%v):\n%s", s.waitErr, s.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := client.Get(s.baseURL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("gatehouse serve was not ready within %s:\n%s", limit, s.logTail())
}

// stop asks the server to finish (SIGTERM, as an orchestrator would) and kills it if it lingers.
func (s *server) stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// rssKiB reads the server's resident set size (VmRSS) from /proc; 0 when it cannot.
func (s *server) rssKiB() int64 {
	f, err := os.Open("/proc/" + strconv.Itoa(s.pid()) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// logTail is the end of the server's log, for error messages.
func (s *server) logTail() string {
	data, err := os.ReadFile(s.logPath)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	return string(bytes.Join(lines[max(0, len(lines)-15):], []byte("\n")))
}

// freeLoopbackAddr finds a free port on 127.0.0.1 for the server to listen on.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return "", errors.New("no TCP address")
	}
	return "127.0.0.1:" + strconv.Itoa(addr.Port), nil
}
