package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// PgBouncerConfigPath is the repository's tested PgBouncer configuration, from the module's root.
const PgBouncerConfigPath = "docs/deploy/pgbouncer.ini"

// PgBouncerAlias is the database name clients ask PgBouncer for (the [databases] line).
const PgBouncerAlias = "gatehouse"

// PgBouncerConfig says how to run one pgbouncer. Dir and Database are required.
type PgBouncerConfig struct {
	// Dir holds the generated pgbouncer.ini, its auth file and its log.
	Dir string
	// Database is what PgBouncer serves, as PgBouncerAlias, and whose roles it authenticates.
	Database *Database
	// Template is the configuration's text; "" is PgBouncerConfigPath of this module.
	Template string
	// Settings go over the template's [pgbouncer] settings (after the ones the harness sets).
	Settings map[string]string
}

// PgBouncer is one running pgbouncer, configured as the template says but for its address, its
// files, its auth_user and its [databases] line. It runs in the foreground, logging to LogPath;
// as root it runs as the postgres user (pgbouncer refuses root).
type PgBouncer struct {
	Addr    string // 127.0.0.1:PORT
	LogPath string
	db      *Database
	cmd     *exec.Cmd
	log     *logBuffer
	done    chan struct{}
}

// PgBouncerInstalled tells whether pgbouncer is on the PATH.
func PgBouncerInstalled() bool {
	_, err := exec.LookPath("pgbouncer")
	return err == nil
}

// StartPgBouncer writes the configuration, starts pgbouncer on a free loopback port and waits
// until the database's role can sign in through it and run a query. ctx bounds the start only.
func StartPgBouncer(ctx context.Context, cfg PgBouncerConfig) (*PgBouncer, error) {
	if cfg.Dir == "" || cfg.Database == nil {
		return nil, errors.New("harness: PgBouncerConfig needs Dir and Database")
	}
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		return nil, fmt.Errorf("pgbouncer is not installed (apt-get install pgbouncer): %w", err)
	}
	template := cfg.Template
	if template == "" {
		root, err := moduleRoot()
		if err != nil {
			return nil, err
		}
		text, err := os.ReadFile(filepath.Join(root, PgBouncerConfigPath))
		if err != nil {
			return nil, err
		}
		template = string(text)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		p, err := launchPgBouncer(bin, addr, template, cfg)
		if err != nil {
			return nil, err
		}
		if err = p.waitReady(ctx); err == nil {
			return p, nil
		}
		p.Stop()
		if attempt < 3 && strings.Contains(p.Log(), "Address already in use") {
			continue
		}
		return nil, fmt.Errorf("pgbouncer on %s: %w\n%s", addr, err, p.Log())
	}
}

func launchPgBouncer(bin, addr, template string, cfg PgBouncerConfig) (*PgBouncer, error) {
	host, port, _ := strings.Cut(addr, ":")
	db := cfg.Database
	authFile := filepath.Join(cfg.Dir, "pgbouncer-users.txt")
	// The server trusts this machine, so auth_user needs no password; the line names the role.
	if err := os.WriteFile(authFile, []byte(fmt.Sprintf("%q \"\"\n", db.AuthUser)), 0o600); err != nil {
		return nil, err
	}
	settings := map[string]string{
		"listen_addr": host, "listen_port": port, "unix_socket_dir": "", "logfile": "", "pidfile": "",
		"auth_file": authFile, "auth_user": db.AuthUser,
	}
	for k, v := range cfg.Settings {
		settings[k] = v
	}
	databases := fmt.Sprintf("%s = host=%s port=%s dbname=%s", PgBouncerAlias, db.Host, db.Port, db.Name)
	ini := filepath.Join(cfg.Dir, "pgbouncer-"+port+".ini")
	if err := os.WriteFile(ini, []byte(rewriteIni(template, databases, settings)), 0o600); err != nil {
		return nil, err
	}
	p := &PgBouncer{Addr: addr, LogPath: filepath.Join(cfg.Dir, "pgbouncer-"+port+".log"), db: db, done: make(chan struct{})}
	var err error
	if p.log, err = newLogBuffer(p.LogPath); err != nil {
		return nil, err
	}
	args := []string{ini}
	if os.Geteuid() == 0 {
		// pgbouncer reads its files before it drops root, so they stay the owner's alone.
		args = []string{"-u", unprivilegedUser(), ini}
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		p.log.finish()
		return nil, fmt.Errorf("start pgbouncer: %w", err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.log.finish()
		close(p.done)
	}()
	return p, nil
}

// waitReady connects through PgBouncer as the database's role until a query answers.
func (p *PgBouncer) waitReady(ctx context.Context) error {
	for {
		attempt, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(attempt, p.URL())
		if err == nil {
			_, err = conn.Exec(attempt, "SELECT 1")
			conn.Close(context.Background())
		}
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("pgbouncer exited: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("no query through pgbouncer (last: %v): %w", err, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// URL is a postgres:// URL through PgBouncer, as the database's role.
func (p *PgBouncer) URL() string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(p.db.User, p.db.Password), Host: p.Addr,
		Path: "/" + PgBouncerAlias, RawQuery: "sslmode=disable"}
	return u.String()
}

// Log is what pgbouncer has logged so far.
func (p *PgBouncer) Log() string { return p.log.String() }

// Stop ends pgbouncer at once (SIGTERM: its immediate shutdown) and waits for it.
func (p *PgBouncer) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// rewriteIni replaces the entries of the [databases] section with databases and sets the given
// [pgbouncer] settings, in place where the template has them and at the section's end where it
// does not. Comments and every other setting stay as they are.
func rewriteIni(template, databases string, settings map[string]string) string {
	var out []string
	section := ""
	pending := map[string]bool{}
	for k := range settings {
		pending[k] = true
	}
	flush := func() {
		if section != "pgbouncer" {
			return
		}
		for _, k := range slices.Sorted(maps.Keys(pending)) {
			out = append(out, k+" = "+settings[k])
		}
		pending = map[string]bool{}
	}
	sc := bufio.NewScanner(strings.NewReader(template))
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "[") && strings.HasSuffix(trimmed, "]") {
			flush()
			section = strings.Trim(trimmed, "[]")
			out = append(out, line)
			if section == "databases" {
				out = append(out, databases)
			}
			continue
		}
		if trimmed == "" || strings.HasPrefix(trimmed, ";") || strings.HasPrefix(trimmed, "#") {
			out = append(out, line)
			continue
		}
		key, _, _ := strings.Cut(trimmed, "=")
		key = strings.TrimSpace(key)
		switch {
		case section == "databases":
			continue // replaced by databases
		case section == "pgbouncer" && pending[key]:
			out = append(out, key+" = "+settings[key])
			delete(pending, key)
		default:
			out = append(out, line)
		}
	}
	flush()
	return strings.Join(out, "\n") + "\n"
}

// unprivilegedUser is who pgbouncer runs as when started by root: postgres, which a machine
// with the server has, else nobody.
func unprivilegedUser() string {
	if _, err := user.Lookup("postgres"); err == nil {
		return "postgres"
	}
	return "nobody"
}

// moduleRoot is the nearest directory up from the working directory with the gatehouse go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(mod), "module gatehouse\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("harness: not inside the gatehouse module (no go.mod up from the working directory)")
		}
		dir = parent
	}
}
