package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"gatehouse/cmd/gatehouse/harness"
)

// serverSetup is what every gatehouse process of one instance shares: binary, database, keys and
// the settings chosen by flags (GATEHOUSE_PASSWORD_CONCURRENCY, which bounds the login cells).
type serverSetup struct {
	bin, dir, databaseURL, keyDir string
	settings                      []string
}

// env is the settings the instance's processes run with: the key directory, benchSettings, the
// flags' settings and extra (NAME=VALUE), later ones winning. The harness adds the database and
// the address, and keeps any Gatehouse setting of the person running the bench away.
func (s serverSetup) env(extra ...string) map[string]string {
	env := map[string]string{"GATEHOUSE_KEY_DIR": s.keyDir}
	for _, kv := range slices.Concat(benchSettings, s.settings, extra) {
		name, value, _ := strings.Cut(kv, "=")
		env[name] = value
	}
	return env
}

// account is a user the bench created, with the password it signs in with.
type account struct{ email, password string }

// createUser runs `gatehouse user create`, which also migrates the fresh database.
func createUser(ctx context.Context, s serverSetup, a account, name string) error {
	env := s.env()
	env["DATABASE_URL"] = s.databaseURL
	res, err := harness.CLI{Binary: s.bin, Env: env}.Run(ctx, a.password+"\n",
		"user", "create", "--email", a.email, "--name", name, "--password-stdin")
	if err != nil {
		return err
	}
	if res.Code != 0 {
		return fmt.Errorf("gatehouse user create --email %s: %s", a.email, res)
	}
	return nil
}

// startServer serves the instance's database with `gatehouse serve` on a free loopback port and
// waits until /readyz answers. The server writes its log straight to a file in the run's
// directory, so that copying it costs the bench's process (whose CPU each cell reports) nothing.
func startServer(ctx context.Context, s serverSetup, extra ...string) (*harness.Server, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return harness.Start(ctx, harness.Config{
		Dir: s.dir, Binary: s.bin, DatabaseURL: s.databaseURL, Env: s.env(extra...), LogDirect: true,
	})
}

// stopServer asks the server to finish (SIGTERM, as an orchestrator would); the harness kills it
// if it lingers. A server that does not exit cleanly is an error, with the end of its log.
func stopServer(srv *harness.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code, err := srv.Stop(ctx)
	if err == nil && code != 0 {
		err = fmt.Errorf("exit status %d", code)
	}
	if err != nil {
		return fmt.Errorf("stop gatehouse serve on %s: %w\n%s", srv.Addr, err, srv.LogTail(15))
	}
	return nil
}

// rssKiB reads the resident set size (VmRSS) of process pid from /proc; 0 when it cannot.
func rssKiB(pid int) int64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
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
