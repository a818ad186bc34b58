package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"maps"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// benchSettings configure the served binary for the bench; everything else is the default.
var benchSettings = []string{
	// Sign-in limits out of the way: the login cells measure argon2id, not the limiter.
	"GATEHOUSE_LOGIN_LIMIT_IP=1000000000/1h",
	"GATEHOUSE_LOGIN_LIMIT_ACCOUNT=1000000000/1h",
	// Each bench client refreshes one session as fast as it can: no per-session limit.
	"GATEHOUSE_SESSION_LIMIT=off",
	// Every sign-in of a login cell starts a session on one of a few accounts; under the default cap
	// they would sign out the bench's own devices (the least recently used) in the middle of the run.
	"GATEHOUSE_MAX_SESSIONS=1000000000",
	// No background prune in the middle of a cell.
	"GATEHOUSE_PRUNE_INTERVAL=0s",
	"GATEHOUSE_SHUTDOWN_TIMEOUT=5s",
	"GATEHOUSE_LOG_FORMAT=json",
}

// serverConfig is what the bench's own auth.Service and store must share with the served binary:
// that binary's defaults, read from its --help, with the bench's settings applied.
type serverConfig struct {
	accessTTL, refreshIdleTTL, sessionMaxAge, refreshGrace, reauthWindow time.Duration
	maxSessions, dbMaxConns                                              int
	// refreshBatch is the default of GATEHOUSE_REFRESH_BATCH as the binary's help gives it;
	// refreshBatchKnown is false when the help does not list it (the binary ignores the setting).
	refreshBatch      string
	refreshBatchKnown bool
}

// readServerConfig asks the binary for its defaults (`gatehouse serve --help` lists each setting
// as "(env NAME, default "VALUE")"), so that they are stated once, in cmd/gatehouse/config.go,
// and a changed default reaches the bench; settings (the bench's) go over them. A setting the
// help no longer lists stops the bench.
func readServerConfig(ctx context.Context, bin string, settings map[string]string) (serverConfig, error) {
	out, err := exec.CommandContext(ctx, bin, "serve", "--help").Output()
	if err != nil {
		return serverConfig{}, fmt.Errorf("%s serve --help: %w", bin, err)
	}
	values, err := parseHelpDefaults(out)
	if err != nil {
		return serverConfig{}, err
	}
	refreshBatch, refreshBatchKnown := values["GATEHOUSE_REFRESH_BATCH"]
	maps.Copy(values, settings)
	r := settingReader{values: values}
	c := serverConfig{
		accessTTL:      r.duration("GATEHOUSE_ACCESS_TTL"),
		refreshIdleTTL: r.duration("GATEHOUSE_REFRESH_IDLE_TTL"),
		sessionMaxAge:  r.duration("GATEHOUSE_SESSION_MAX_AGE"),
		refreshGrace:   r.duration("GATEHOUSE_REFRESH_GRACE"),
		reauthWindow:   r.duration("GATEHOUSE_REAUTH_WINDOW"),
		maxSessions:    r.number("GATEHOUSE_MAX_SESSIONS"),
		dbMaxConns:     r.number("GATEHOUSE_DB_MAX_CONNS"),
		refreshBatch:   refreshBatch, refreshBatchKnown: refreshBatchKnown,
	}
	if r.err != nil {
		return serverConfig{}, fmt.Errorf("%s serve --help: %w", bin, r.err)
	}
	return c, nil
}

// helpDefault matches the end of a flag's description in `gatehouse serve --help`.
var helpDefault = regexp.MustCompile(`\(env ([A-Z_]+), default ("(?:[^"\\]|\\.)*")\)$`)

// parseHelpDefaults maps each environment variable the help lists to its default.
func parseHelpDefaults(help []byte) (map[string]string, error) {
	values := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(help))
	for sc.Scan() {
		m := helpDefault.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		v, err := strconv.Unquote(m[2])
		if err != nil {
			return nil, fmt.Errorf("default of %s: %w", m[1], err)
		}
		values[m[1]] = v
	}
	return values, sc.Err()
}

// settingReader reads typed settings and keeps the first error.
type settingReader struct {
	values map[string]string
	err    error
}

func (r *settingReader) lookup(name string) (string, bool) {
	v, ok := r.values[name]
	if !ok && r.err == nil {
		r.err = fmt.Errorf("no default listed for %s", name)
	}
	return v, ok
}

func (r *settingReader) duration(name string) time.Duration {
	v, ok := r.lookup(name)
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("%s=%q is not a duration", name, v)
	}
	return d
}

func (r *settingReader) number(name string) int {
	v, ok := r.lookup(name)
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("%s=%q is not a whole number", name, v)
	}
	return n
}
