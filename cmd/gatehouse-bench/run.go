package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// options are the bench's flags.
type options struct {
	databaseURL    string
	duration       time.Duration
	rounds         int   // the rotation cells alternate in this many slices of duration
	workers        []int // the refresh, /api/me, limit and service cells
	loginWorkers   []int // the sign-in cells
	users          int
	serverBin      string
	profileWorkers int
	perfOut        string
	cpuProfile     string
	seedTokens     int
	loginFlood     int
	passwordSlots  int // the server's GATEHOUSE_PASSWORD_CONCURRENCY
}

func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("gatehouse-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: gatehouse-bench [flags]\n\nBuilds cmd/gatehouse, serves it on a fresh PostgreSQL database and prints a table of")
		fmt.Fprintln(stderr, "requests/s, p50, p99, errors and the server's RSS per cell. Run it from the module (make bench).")
		fs.PrintDefaults()
	}
	o := &options{}
	defaultURL := getenv("DATABASE_URL")
	if !strings.HasPrefix(defaultURL, "postgres") {
		defaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	fs.StringVar(&o.databaseURL, "database-url", defaultURL, "PostgreSQL to bench on: a fresh database is created there and dropped at the end")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long each cell runs (2s makes a smoke run)")
	fs.IntVar(&o.rounds, "rounds", 5, "refresh over HTTP, the limit and the service alternate in this many slices of -duration, so that a shared machine's drifting load falls on all three alike")
	workers := fs.String("workers", "1,4,16,64", "concurrent workers of the refresh, /api/me, limit and service cells")
	loginWorkers := fs.String("login-workers", "1,4,16", "concurrent workers of the sign-in cells (the server hashes -password-concurrency passwords at once)")
	fs.IntVar(&o.users, "users", 4, "accounts created with gatehouse user create; devices are spread over them")
	fs.StringVar(&o.serverBin, "server-bin", "", "a gatehouse binary to serve instead of building ./cmd/gatehouse")
	fs.IntVar(&o.profileWorkers, "profile-workers", 16, "the refresh cell that -perf and -cpu-profile profile")
	fs.StringVar(&o.perfOut, "perf", "", "record the server with perf during the profiled refresh cell into this `file` and print its top symbols")
	fs.StringVar(&o.cpuProfile, "cpu-profile", "", "after the table, serve once more with GATEHOUSE_CPU_PROFILE set to this `file`, drive the profiled refresh cell, and print go tool pprof -top")
	fs.IntVar(&o.seedTokens, "seed-tokens", 0, "extra: compare refresh p50 with 10,000 stored tokens and with this many (e.g. 1000000)")
	fs.IntVar(&o.passwordSlots, "password-concurrency", 0, "the server's GATEHOUSE_PASSWORD_CONCURRENCY (0: its default, half the cores)")
	fs.IntVar(&o.loginFlood, "login-flood", 0, "extra: this many sign-in workers run beside the profiled refresh cell; compare its p99 with and without")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q; see -help", fs.Arg(0))
	}
	var err error
	if o.workers, err = parseCounts("workers", *workers); err != nil {
		return nil, err
	}
	if o.loginWorkers, err = parseCounts("login-workers", *loginWorkers); err != nil {
		return nil, err
	}
	switch {
	case !strings.HasPrefix(o.databaseURL, "postgres://") && !strings.HasPrefix(o.databaseURL, "postgresql://"):
		return nil, errors.New("-database-url must be a postgres:// URL: the bench measures the PostgreSQL path")
	case o.duration <= 0:
		return nil, errors.New("-duration must be positive")
	case o.rounds < 1:
		return nil, errors.New("-rounds must be at least 1")
	case o.users < 1:
		return nil, errors.New("-users must be at least 1")
	case o.profileWorkers < 1:
		return nil, errors.New("-profile-workers must be at least 1")
	case o.passwordSlots < 0:
		return nil, errors.New("-password-concurrency must be 0 (the server's default) or more")
	}
	return o, nil
}

// parseCounts reads a comma-separated list of positive numbers such as "1,4,16,64".
func parseCounts(name, list string) ([]int, error) {
	var counts []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-%s: %q is not a list of positive numbers like 1,4,16", name, list)
		}
		counts = append(counts, n)
	}
	return counts, nil
}

// run is the whole bench: main only wires it to the process.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	opts, err := parseOptions(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }

	dir, err := os.MkdirTemp("", "gatehouse-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	log("building the server")
	bin, err := buildServer(ctx, opts.serverBin, dir)
	if err != nil {
		return err
	}
	db, err := createDatabase(ctx, opts.databaseURL)
	if err != nil {
		return err
	}
	log("fresh database %s", db.name)
	defer func() {
		if err := db.drop(context.Background()); err != nil {
			log("could not drop database %s: %v", db.name, err)
		}
	}()
	setup := serverSetup{bin: bin, dir: dir, databaseURL: db.url, keyDir: filepath.Join(dir, "keys"),
		settings: []string{"GATEHOUSE_PASSWORD_CONCURRENCY=" + strconv.Itoa(opts.passwordSlots)}}
	srv, err := startServer(ctx, setup)
	if err != nil {
		return err
	}
	defer srv.stop()

	b := &bench{opts: opts, setup: setup, server: srv, api: newAPI(srv.baseURL), db: db, log: log}
	defer b.close()
	if err := b.prepare(ctx); err != nil {
		return err
	}
	return b.runAll(ctx, stdout)
}

// bench holds one run: the server, the devices signed in on it, and the direct path to the database.
type bench struct {
	opts   *options
	setup  serverSetup
	server *server
	api    *api
	db     *database
	direct *direct
	log    func(format string, a ...any)

	accounts      []account
	httpDevices   []*device // signed in over HTTP, refreshed over HTTP
	directDevices []*device // signed in through the service, rotated by the direct cells
}

// prepare creates the accounts with the CLI and signs in one device per worker, over HTTP and
// through the service.
func (b *bench) prepare(ctx context.Context) error {
	b.log("creating %d accounts with `gatehouse user create`", b.opts.users)
	for i := range b.opts.users {
		a := account{email: fmt.Sprintf("bench-%d@example.com", i+1), password: "bench password " + strconv.Itoa(i+1)}
		if err := createUser(ctx, b.setup, a, fmt.Sprintf("Bench %d", i+1)); err != nil {
			return err
		}
		b.accounts = append(b.accounts, a)
	}
	devices := max(slices.Max(b.opts.workers), b.opts.profileWorkers)
	b.log("signing in %d devices over HTTP and %d through the service", devices, devices)
	var err error
	if b.httpDevices, err = b.api.signInDevices(ctx, b.accounts, "bench-http", devices); err != nil {
		return err
	}
	if b.direct, err = openDirect(b.db.url, b.setup.keyDir, b.server.baseURL); err != nil {
		return err
	}
	b.directDevices, err = b.direct.signInDevices(ctx, b.accounts, "bench-direct", devices)
	return err
}

func (b *bench) close() {
	if b.direct != nil {
		b.direct.close()
	}
}

// runAll runs every cell, prints the tables, the extras asked for, and the fork check.
func (b *bench) runAll(ctx context.Context, stdout io.Writer) error {
	r := &report{duration: b.opts.duration}
	if err := b.describeMachine(ctx, r); err != nil {
		return err
	}
	for _, w := range b.opts.workers {
		if err := b.rotationCells(ctx, r, w); err != nil {
			return err
		}
	}
	for _, w := range b.opts.workers {
		b.record(r, b.meCell(ctx, w))
	}
	for _, w := range b.opts.loginWorkers {
		b.record(r, b.loginCell(ctx, w))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r.printMain(stdout)

	if b.opts.seedTokens > 0 {
		if err := b.seedComparison(ctx, stdout); err != nil {
			return err
		}
	}
	if b.opts.loginFlood > 0 {
		b.loginFloodComparison(ctx, stdout)
	}
	if b.opts.cpuProfile != "" {
		if err := b.pprofCell(ctx, stdout); err != nil {
			return err
		}
	}
	return b.verifyNoForks(ctx, stdout)
}

// rotationCells measures refresh over HTTP, the one-statement limit and the service without HTTP
// at one concurrency. They take turns in -rounds slices, so that the load of a shared machine
// drifts as little as possible between the cells of one ratio. The HTTP rounds of the profiled
// concurrency are recorded with perf when asked (the server idles during the other rounds).
func (b *bench) rotationCells(ctx context.Context, r *report, workers int) error {
	var perf *perfRecording
	if workers == b.opts.profileWorkers && b.opts.perfOut != "" {
		var err error
		if perf, err = startPerf(ctx, b.server.pid(), b.opts.perfOut); err != nil {
			return err
		}
	}
	slice := b.opts.duration / time.Duration(b.opts.rounds)
	var overHTTP, limit, service []cell
	for range b.opts.rounds {
		overHTTP = append(overHTTP, b.refreshCell(ctx, b.server, workers, slice))
		limit = append(limit, b.limitCell(ctx, workers, slice))
		service = append(service, b.serviceCell(ctx, workers, slice))
	}
	if perf != nil {
		top, err := perf.stop()
		if err != nil {
			return err
		}
		r.perfTop = top
	}
	b.record(r, merge(overHTTP))
	b.record(r, merge(limit))
	b.record(r, merge(service))
	return ctx.Err()
}

// record logs a cell's line as it finishes and adds it to the report.
func (b *bench) record(r *report, c cell) {
	b.logCell(c)
	r.cells = append(r.cells, c)
}

// logCell shows progress on stderr.
func (b *bench) logCell(c cell) {
	b.log("%-34s %3d workers: %8.0f req/s  p50 %-9s p99 %-9s errors %d, 429/503 %d",
		c.name, c.workers, c.rate(), ms(c.p50), ms(c.p99), c.errors, c.refused)
}
