package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"gatehouse/cmd/gatehouse/harness"
)

// options are the bench's flags.
type options struct {
	databaseURL    string
	duration       time.Duration
	warmup         time.Duration // unmeasured load before each cell of each round
	rounds         int           // the rotation cells are measured in this many rounds of duration/rounds
	repeats        int           // each extra comparison is measured this many times
	seed           uint64        // orders the rounds; 0 draws one
	workers        []int         // the refresh, /api/me, limit and service cells
	loginWorkers   []int         // the sign-in cells
	pageWorkers    []int         // the GET /devices cells
	stormReaders   int           // /api/me and GET /devices workers beside the SQLite refresh storm
	coldTokens     int           // tokens minted for each cold /api/me cell
	users          int
	serverBin      string
	profileWorkers int
	perfOut        string
	cpuProfile     string
	seedTokens     int
	loginFlood     int
	passwordSlots  int    // the server's GATEHOUSE_PASSWORD_CONCURRENCY
	pgStatements   string // the main server's GATEHOUSE_PG_STATEMENTS; "" its default
	pgbouncer      string // the pooled server's GATEHOUSE_PG_STATEMENTS; "" runs no pooled server
}

func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("gatehouse-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: gatehouse-bench [flags]\n\nBuilds cmd/gatehouse and serves it three times: on a fresh PostgreSQL database (main), on another")
		fmt.Fprintln(stderr, "with GATEHOUSE_REFRESH_BATCH=off (unbatched) and on a SQLite file; drives them over HTTP beside the limits")
		fmt.Fprintln(stderr, "(the rotation from this process, on PostgreSQL and on SQLite) and prints a table of requests/s, p50, p99,")
		fmt.Fprintln(stderr, "errors, the server's RSS and CPU per cell, then the goals of issues 6 and 16. Run it from the module (make bench).")
		fmt.Fprintln(stderr, "A smoke run: -duration 2s -warmup 200ms -workers 1,16 -login-workers 1 -rounds 2 -cold-tokens 10000")
		fs.PrintDefaults()
	}
	o := &options{}
	defaultURL := getenv("DATABASE_URL")
	if !strings.HasPrefix(defaultURL, "postgres") {
		defaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	fs.StringVar(&o.databaseURL, "database-url", defaultURL, "PostgreSQL to bench on: a fresh database is created there and dropped at the end")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long each cell runs, its rounds added up (2s makes a smoke run)")
	fs.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "unmeasured load before every cell of every round (connections, caches); its failures are reported")
	fs.IntVar(&o.rounds, "rounds", 5, "refresh over HTTP, the limit and the service are measured side by side in this many rounds of -duration/-rounds; the ratios are given per round (median, min, max)")
	fs.IntVar(&o.repeats, "repeats", 3, "how many times -seed-tokens and -login-flood measure each side of their comparison")
	fs.Uint64Var(&o.seed, "seed", 0, "seed of the order of rounds and of the cells in each round (0: draw one; the run prints it)")
	workers := fs.String("workers", "1,4,16,64", "concurrent workers of the refresh, /api/me, limit and service cells")
	loginWorkers := fs.String("login-workers", "1,4,16", "concurrent workers of the sign-in cells (the server hashes -password-concurrency passwords at once)")
	pageWorkers := fs.String("page-workers", "1,16", "concurrent workers of the GET /devices cells (valid and expired access cookie, on PostgreSQL and SQLite); each has a device of its own")
	fs.IntVar(&o.stormReaders, "storm-readers", 4, "workers of GET /api/me and GET /devices on SQLite, measured alone and while 16 workers refresh")
	fs.IntVar(&o.coldTokens, "cold-tokens", 50000, "access tokens minted for each cold /api/me cell, each presented once; the cell ends when they run out, if before -duration")
	fs.IntVar(&o.users, "users", 4, "accounts created with gatehouse user create; devices are spread over them")
	fs.StringVar(&o.serverBin, "server-bin", "", "a gatehouse binary to serve instead of building ./cmd/gatehouse")
	fs.IntVar(&o.profileWorkers, "profile-workers", 16, "workers of the extra refresh cells: -perf, -cpu-profile, -seed-tokens and -login-flood")
	fs.StringVar(&o.perfOut, "perf", "", "after the table, record the server with perf during one more refresh cell into this `file` and print its top symbols")
	fs.StringVar(&o.cpuProfile, "cpu-profile", "", "after the table, serve once more with GATEHOUSE_CPU_PROFILE set to this `file`, drive the profiled refresh cell, and print go tool pprof -top")
	fs.IntVar(&o.seedTokens, "seed-tokens", 0, "extra: compare refresh p50 with 10,000 stored tokens and with this many (e.g. 1000000), on two servers and databases, -repeats times")
	fs.IntVar(&o.passwordSlots, "password-concurrency", 0, "the server's GATEHOUSE_PASSWORD_CONCURRENCY (0: its default, half the cores)")
	fs.StringVar(&o.pgStatements, "pg-statements", "", "the main server's GATEHOUSE_PG_STATEMENTS: cache, describe, exec or simple (\"\": its default, cache)")
	fs.StringVar(&o.pgbouncer, "pgbouncer", "", "also serve a second instance, on a database of its own, through a PgBouncer started with docs/deploy/pgbouncer.ini (transaction pooling) and with this GATEHOUSE_PG_STATEMENTS (exec, describe or simple); its refresh and cached /api/me cells run in the same rounds as the main server's, and the run gives their ratio per round")
	fs.IntVar(&o.loginFlood, "login-flood", 0, "extra: this many sign-in workers run beside the profiled refresh cell; compare its p99 with and without, -repeats times")
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
	if o.pageWorkers, err = parseCounts("page-workers", *pageWorkers); err != nil {
		return nil, err
	}
	switch {
	case !strings.HasPrefix(o.databaseURL, "postgres://") && !strings.HasPrefix(o.databaseURL, "postgresql://"):
		return nil, errors.New("-database-url must be a postgres:// URL: the bench measures the PostgreSQL path")
	case o.duration <= 0:
		return nil, errors.New("-duration must be positive")
	case o.warmup < 0:
		return nil, errors.New("-warmup must be 0 or more")
	case o.rounds < 1:
		return nil, errors.New("-rounds must be at least 1")
	case o.repeats < 1:
		return nil, errors.New("-repeats must be at least 1")
	case o.coldTokens < 1:
		return nil, errors.New("-cold-tokens must be at least 1")
	case o.users < 1:
		return nil, errors.New("-users must be at least 1")
	case o.profileWorkers < 1:
		return nil, errors.New("-profile-workers must be at least 1")
	case o.passwordSlots < 0:
		return nil, errors.New("-password-concurrency must be 0 (the server's default) or more")
	case o.stormReaders < 1:
		return nil, errors.New("-storm-readers must be at least 1")
	}
	for o.seed == 0 {
		o.seed = rand.Uint64()
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
	bin, err := serverBinary(opts.serverBin, log)
	if err != nil {
		return err
	}
	defer harness.RemoveBuild()
	setup := serverSetup{bin: bin, dir: dir, keyDir: filepath.Join(dir, "keys"),
		settings: []string{"GATEHOUSE_PASSWORD_CONCURRENCY=" + strconv.Itoa(opts.passwordSlots)}}
	if opts.pgStatements != "" {
		setup.settings = append(setup.settings, "GATEHOUSE_PG_STATEMENTS="+opts.pgStatements)
	}
	cfg, err := readServerConfig(ctx, bin, setup.env())
	if err != nil {
		return err
	}
	b := &bench{opts: opts, setup: setup, cfg: cfg, rng: newShuffler(opts.seed), log: log}
	defer b.close()
	if b.main, err = b.startInstance(ctx, "main"); err != nil {
		return err
	}
	if b.unbatched, err = b.startInstance(ctx, "unbatched", "GATEHOUSE_REFRESH_BATCH=off"); err != nil {
		return err
	}
	if opts.pgbouncer != "" {
		if b.pooled, err = b.startInstanceBehindPgBouncer(ctx, "pooled", opts.pgbouncer); err != nil {
			return err
		}
	}
	if b.sqlite, err = b.startSQLiteInstance(ctx, "bench"); err != nil {
		return err
	}
	if err := b.prepare(ctx); err != nil {
		return err
	}
	return b.runAll(ctx, stdout)
}

// serverBinary is the binary given with -server-bin, or else the one the harness builds from
// ./cmd/gatehouse.
func serverBinary(given string, log func(format string, a ...any)) (string, error) {
	if given != "" {
		return filepath.Abs(given)
	}
	log("building the server")
	return harness.Build()
}

// bench holds one run: the servers, the devices signed in on them, and the direct paths to the
// main database and to the SQLite limit's file.
type bench struct {
	opts      *options
	setup     serverSetup // the binary, key directory and settings every instance shares
	cfg       serverConfig
	rng       *rand.Rand
	log       func(format string, a ...any)
	main      *instance
	unbatched *instance // GATEHOUSE_REFRESH_BATCH=off on a database of its own, measured beside main
	pooled    *instance // -pgbouncer: a server behind PgBouncer, measured beside main
	sqlite    *instance // the embedded default: a server on a SQLite file
	big       *instance // -seed-tokens: the second server, on the database with the many tokens
	direct    *direct
	sqliteLim *sqliteLimit // the SQLite limit, on a file of the bench's own

	accounts      []account
	directDevices []*device // signed in through the service, rotated by the direct cells
	logins        atomic.Int64
}

// instance is one `gatehouse serve` on a fresh database of its own, with the devices the bench
// signed in on it over HTTP (one per worker, refreshed over HTTP).
type instance struct {
	db         *database          // nil on SQLite
	sqlitePath string             // the SQLite instance's file
	pgbouncer  *harness.PgBouncer // -pgbouncer: between the server and the database
	setup      serverSetup
	server     *harness.Server
	api        *api
	devices    []*device
	// pageDevices are the browsers of the page cells, signed in as the page users (pages.go).
	pageDevices []*device
}

// startInstance creates a fresh database, creates the accounts in it with the CLI (which
// migrates it) and serves it, with settings (NAME=VALUE) over the run's.
func (b *bench) startInstance(ctx context.Context, label string, settings ...string) (*instance, error) {
	db, err := createDatabase(ctx, b.opts.databaseURL, label)
	if err != nil {
		return nil, err
	}
	b.log("fresh database %s", db.name)
	inst := &instance{db: db, setup: b.setup}
	inst.setup.databaseURL = db.url
	inst.setup.settings = slices.Concat(inst.setup.settings, settings)
	return b.serveInstance(ctx, inst)
}

// startInstanceBehindPgBouncer is startInstance with PgBouncer in front: a fresh database owned
// by a role of its own (the harness's, which PgBouncer's auth_query authenticates), a PgBouncer
// on it, and the server on PgBouncer with GATEHOUSE_PG_STATEMENTS=mode and its revocation feed on
// the direct URL. The bench's own connections to that database (the fork check) stay direct.
func (b *bench) startInstanceBehindPgBouncer(ctx context.Context, label, mode string) (*instance, error) {
	roles, err := harness.CreateDatabase(ctx, b.opts.databaseURL, fmt.Sprintf("gatehouse_bench_%d_%s", os.Getpid(), label))
	if err != nil {
		return nil, err
	}
	db := &database{adminURL: b.opts.databaseURL, name: roles.Name, url: roles.URL, roles: roles}
	b.log("fresh database %s, behind PgBouncer", db.name)
	inst := &instance{db: db, setup: b.setup}
	inst.pgbouncer, err = harness.StartPgBouncer(ctx, harness.PgBouncerConfig{Dir: filepath.Join(b.setup.dir, "pgbouncer-"+label), Database: roles})
	if err != nil {
		inst.close(b.log)
		return nil, err
	}
	inst.setup.databaseURL = inst.pgbouncer.URL()
	inst.setup.settings = append(slices.Clone(inst.setup.settings), "GATEHOUSE_LISTEN_DATABASE_URL="+roles.URL, "GATEHOUSE_PG_STATEMENTS="+mode)
	return b.serveInstance(ctx, inst)
}

// serveInstance creates the accounts with the CLI (which migrates the database) and serves it.
func (b *bench) serveInstance(ctx context.Context, inst *instance) (*instance, error) {
	if err := b.createAccounts(ctx, inst.setup); err != nil {
		inst.close(b.log)
		return nil, err
	}
	var err error
	if inst.server, err = startServer(ctx, inst.setup); err != nil {
		inst.close(b.log)
		return nil, err
	}
	inst.api = newAPI(inst.server.URL)
	return inst, nil
}

// close stops the server (and PgBouncer) and drops the database.
func (i *instance) close(log func(string, ...any)) {
	if i.server != nil {
		if err := stopServer(i.server); err != nil {
			log("%v", err)
		}
	}
	if i.pgbouncer != nil {
		i.pgbouncer.Stop()
	}
	if i.db == nil {
		return // SQLite: the file goes with the run's directory
	}
	if err := i.db.drop(context.Background()); err != nil {
		log("could not drop database %s: %v", i.db.name, err)
	}
}

// createAccounts creates the bench's accounts with `gatehouse user create`.
func (b *bench) createAccounts(ctx context.Context, setup serverSetup) error {
	b.log("creating %d accounts with `gatehouse user create`", b.opts.users)
	var accounts []account
	for i := range b.opts.users {
		a := account{email: fmt.Sprintf("bench-%d@example.com", i+1), password: "bench password " + strconv.Itoa(i+1)}
		if err := createUser(ctx, setup, a, fmt.Sprintf("Bench %d", i+1)); err != nil {
			return err
		}
		accounts = append(accounts, a)
	}
	b.accounts = accounts
	return nil
}

// prepare signs in one device per worker on each server over HTTP, and as many through the
// service on the main database and on the SQLite limit's file; and the page users' browsers.
func (b *bench) prepare(ctx context.Context) error {
	devices := max(slices.Max(b.opts.workers), b.opts.profileWorkers, stormWorkers)
	b.log("signing in %d devices over HTTP on each server and %d through the service on PostgreSQL and on SQLite", devices, devices)
	var err error
	for _, side := range []struct {
		inst   *instance
		prefix string
	}{{b.main, "bench-http"}, {b.unbatched, "bench-unbatched"}, {b.pooled, "bench-pooled"}, {b.sqlite, "bench-sqlite"}} {
		if side.inst == nil {
			continue
		}
		if side.inst.devices, err = side.inst.api.signInDevices(ctx, b.accounts, side.prefix, devices, ""); err != nil {
			return err
		}
	}
	if b.direct, err = openDirect(b.main.db.url, b.setup.keyDir, b.main.server.URL, b.cfg, nil); err != nil {
		return err
	}
	if b.directDevices, err = b.direct.signInDevices(ctx, b.accounts, "bench-direct", devices); err != nil {
		return err
	}
	if b.sqliteLim, err = b.openSQLiteLimit(ctx, devices); err != nil {
		return err
	}
	for _, inst := range []*instance{b.main, b.sqlite} {
		if err := b.preparePages(ctx, inst); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) close() {
	if b.direct != nil {
		b.direct.close()
	}
	if b.sqliteLim != nil {
		b.sqliteLim.close()
	}
	for _, i := range []*instance{b.big, b.pooled, b.sqlite, b.unbatched, b.main} {
		if i != nil {
			i.close(b.log)
		}
	}
}

// runAll runs every cell, prints the tables, the extras asked for, and the fork check. The
// rotation rounds come first, then the /api/me cells, the page cells, the SQLite readers beside
// a refresh storm, then sign-in, each phase in a shuffled order: sign-in leaves the server's heap
// large (argon2id) and adds a session per request, so it goes last rather than among the others.
func (b *bench) runAll(ctx context.Context, stdout io.Writer) error {
	r := &report{duration: b.opts.duration, warmup: b.opts.warmup, seed: b.opts.seed, rounds: b.opts.rounds, coldTokens: b.opts.coldTokens}
	if err := b.describeMachine(ctx, r); err != nil {
		return err
	}
	b.log("seed %d (-seed %d repeats this order)", b.opts.seed, b.opts.seed)
	if err := b.rotationRounds(ctx, r); err != nil {
		return err
	}
	meRounds, err := b.runRounds(ctx, schedule(b.rng, b.opts.workers, 1, b.meCells()...), b.opts.duration)
	if err != nil {
		return err
	}
	r.add(meRounds)
	if b.pooled != nil {
		for _, res := range meRounds {
			r.mePooledOverDirect = appendPair(r.mePooledOverDirect, res.workers, pair{of: res.cells[cellMePooled], over: res.cells[cellMeCached]})
		}
	}
	pageRounds, err := b.runRounds(ctx, schedule(b.rng, b.opts.pageWorkers, 1, pageCells...), b.opts.duration)
	if err != nil {
		return err
	}
	r.add(pageRounds)
	if err := b.stormComparison(ctx, r); err != nil {
		return err
	}
	loginRounds, err := b.runRounds(ctx, schedule(b.rng, b.opts.loginWorkers, 1, cellLogin), b.opts.duration)
	if err != nil {
		return err
	}
	r.add(loginRounds)
	r.printMain(stdout)

	if b.opts.seedTokens > 0 {
		if err := b.sizeComparison(ctx, stdout); err != nil {
			return err
		}
	}
	if b.opts.loginFlood > 0 {
		if err := b.loginFloodComparison(ctx, stdout); err != nil {
			return err
		}
	}
	if b.opts.perfOut != "" {
		if err := b.perfCell(ctx, stdout); err != nil {
			return err
		}
	}
	if b.opts.cpuProfile != "" {
		if err := b.pprofCell(ctx, stdout); err != nil {
			return err
		}
	}
	return b.verifyNoForks(ctx, stdout)
}

// rotationRounds measures the rotation cells side by side: on PostgreSQL refresh over HTTP
// (batched and unbatched, and with -pgbouncer through PgBouncer), the one-statement limit and the
// service without HTTP; on SQLite refresh over HTTP and the rotation transaction. -rounds rounds
// per concurrency of duration/rounds each, every round warmed up, the cells of a round and the
// rounds of the whole run in an order drawn from the seed. The ratios are per round (a round's
// cells ran back to back, under the same load).
func (b *bench) rotationRounds(ctx context.Context, r *report) error {
	cells := []string{cellRefreshHTTP, cellLimit, cellService, cellRefreshUnbatched, cellRefreshSQLite, cellLimitSQLite}
	if b.pooled != nil {
		cells = append(cells, cellRefreshPooled)
	}
	rounds := schedule(b.rng, b.opts.workers, b.opts.rounds, cells...)
	results, err := b.runRounds(ctx, rounds, b.opts.duration/time.Duration(b.opts.rounds))
	if err != nil {
		return err
	}
	r.add(results)
	for _, res := range results {
		r.httpOverLimit = appendPair(r.httpOverLimit, res.workers, pair{of: res.cells[cellRefreshHTTP], over: res.cells[cellLimit]})
		r.serviceOverLimit = appendPair(r.serviceOverLimit, res.workers, pair{of: res.cells[cellService], over: res.cells[cellLimit]})
		r.sqliteOverLimit = appendPair(r.sqliteOverLimit, res.workers, pair{of: res.cells[cellRefreshSQLite], over: res.cells[cellLimitSQLite]})
		r.batchedOverUnbatched = appendPair(r.batchedOverUnbatched, res.workers, pair{of: res.cells[cellRefreshHTTP], over: res.cells[cellRefreshUnbatched]})
		if b.pooled != nil {
			r.pooledOverDirect = appendPair(r.pooledOverDirect, res.workers, pair{of: res.cells[cellRefreshPooled], over: res.cells[cellRefreshHTTP]})
		}
	}
	r.batchGoals(results)
	return nil
}

// appendPair adds one repeat to the rate comparison at a concurrency.
func appendPair(m map[int]*comparison, workers int, p pair) map[int]*comparison {
	return appendPairOf(m, workers, p, rateOf, percent)
}

// appendPairOf adds one repeat to the comparison of metric at a concurrency.
func appendPairOf(m map[int]*comparison, workers int, p pair, metric func(cell) float64, format func(float64) string) map[int]*comparison {
	if m == nil {
		m = map[int]*comparison{}
	}
	if m[workers] == nil {
		m[workers] = &comparison{metric: metric, format: format}
	}
	m[workers].repeats = append(m[workers].repeats, p)
	return m
}

// roundResult is the cells one round measured, by name.
type roundResult struct {
	workers int
	repeat  int // which round of its concurrency, from 0
	cells   map[string]cell
}

// runRounds measures the rounds in order, each cell for d after its warm-up.
func (b *bench) runRounds(ctx context.Context, rounds []round, d time.Duration) ([]roundResult, error) {
	var results []roundResult
	for i, rd := range rounds {
		b.log("round %d/%d: %d workers: %s", i+1, len(rounds), rd.workers, strings.Join(rd.cells, ", then "))
		res := roundResult{workers: rd.workers, repeat: rd.repeat, cells: map[string]cell{}}
		for _, name := range rd.cells {
			c, err := b.runCell(ctx, name, rd.workers, d)
			if err != nil {
				return nil, err
			}
			b.logCell(c)
			res.cells[name] = c
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		results = append(results, res)
	}
	return results, nil
}

// runCell runs one cell of the main schedule at a concurrency for d, after its warm-up.
func (b *bench) runCell(ctx context.Context, name string, workers int, d time.Duration) (cell, error) {
	switch name {
	case cellRefreshHTTP:
		return b.warmThenDrive(ctx, name, workers, d, b.main.server, b.refreshOp(b.main)), nil
	case cellLimit:
		return b.warmThenDrive(ctx, name, workers, d, nil, b.limitOp()), nil
	case cellService:
		return b.warmThenDrive(ctx, name, workers, d, nil, b.serviceOp()), nil
	case cellMeCached, cellMePooled:
		inst := b.main
		if name == cellMePooled {
			inst = b.pooled
		}
		do, warmupErrors := b.meCachedOp(ctx, inst, workers)
		c := b.warmThenDrive(ctx, name, workers, d, inst.server, do)
		c.warmupErrors += warmupErrors
		return c, nil
	case cellRefreshPooled:
		return b.warmThenDrive(ctx, name, workers, d, b.pooled.server, b.refreshOp(b.pooled)), nil
	case cellRefreshUnbatched:
		return b.warmThenDrive(ctx, name, workers, d, b.unbatched.server, b.refreshOp(b.unbatched)), nil
	case cellRefreshSQLite:
		return b.warmThenDrive(ctx, name, workers, d, b.sqlite.server, b.refreshOp(b.sqlite)), nil
	case cellLimitSQLite:
		return b.warmThenDrive(ctx, name, workers, d, nil, b.sqliteLimitOp()), nil
	case cellPageValid, cellPageValidSQLite:
		inst := b.pageInstance(name)
		failures := b.freshAccess(ctx, inst, workers)
		return b.pageCell(ctx, name, workers, d, inst, pageValidOp(inst), failures)
	case cellPageExpired, cellPageExpiredSQLite:
		inst := b.pageInstance(name)
		return b.pageCell(ctx, name, workers, d, inst, pageExpiredOp(inst), 0)
	case cellMeCold:
		do, err := b.meColdOp(ctx, workers)
		if err != nil {
			return cell{}, err
		}
		return b.warmThenDrive(ctx, name, workers, d, b.main.server, do), nil
	case cellLogin:
		return b.warmThenDrive(ctx, name, workers, d, b.main.server, b.loginOp("bench-login")), nil
	}
	return cell{}, fmt.Errorf("no cell named %q", name)
}

// warmThenDrive warms up with op for -warmup, then drives the cell with it for d. Of the warm-up only
// its failures are kept. srv is the server the cell's requests reach, whose CPU and RSS the row
// shows; nil for the direct cells, which go to the database from this process (the main server's
// CPU is still sampled: it idles).
func (b *bench) warmThenDrive(ctx context.Context, name string, workers int, d time.Duration, srv *harness.Server, do op) cell {
	pid := b.main.server.PID()
	if srv != nil {
		pid = srv.PID()
	}
	warmupErrors := b.warmUp(ctx, name, workers, pid, do)
	c := drive(ctx, name, workers, d, pid, do)
	c.warmupErrors = warmupErrors
	if srv != nil {
		c.rssKiB = rssKiB(srv.PID())
	}
	return c
}

// warmUp drives op for -warmup, unmeasured, and returns how many of its requests failed or were shed.
func (b *bench) warmUp(ctx context.Context, name string, workers, pid int, do op) int {
	if b.opts.warmup <= 0 {
		return 0
	}
	warm := drive(ctx, name, workers, b.opts.warmup, pid, do)
	return warm.errors + warm.shed
}

// logCell shows progress on stderr.
func (b *bench) logCell(c cell) {
	b.log("  %-34s %3d workers: %8.0f req/s  p50 %-9s p99 %-9s errors %d, 429/503 %d, warm-up failures %d",
		c.name, c.workers, c.rate(), ms(c.p50), ms(c.p99), c.errors, c.shed, c.warmupErrors)
}
