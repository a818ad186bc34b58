package main

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"gatehouse/cmd/gatehouse/harness"
)

// report collects a run's description and cells and prints them as Markdown tables, ready to
// paste into BENCHMARKS.md.
type report struct {
	duration, warmup time.Duration
	seed             uint64
	rounds           int
	coldTokens       int
	machine          []string
	measured         map[cellKey][]cell // every round of every cell, merged for the table
	httpOverLimit    map[int]*comparison
	serviceOverLimit map[int]*comparison
	// -pgbouncer: the pooled server's rate over the main server's, per round
	pooledOverDirect   map[int]*comparison // refresh over HTTP
	mePooledOverDirect map[int]*comparison // GET /api/me, cached

	// Issue 16.
	sqliteOverLimit      map[int]*comparison // refresh over HTTP on SQLite over the SQLite limit, per round
	batchedOverUnbatched map[int]*comparison // refresh over HTTP, main over unbatched, per round
	batchedP50           map[int]*comparison // the same, p50 over p50
	batchOverLimit       comparison          // main refresh at 64 workers over the better limit cell at 16 and 64, per round
	refreshBatch         string              // GATEHOUSE_REFRESH_BATCH's default, as the served binary's help gives it
	refreshBatchKnown    bool                // whether the help lists it at all
	storm                *storm
}

// cellKey names one row of the table.
type cellKey struct {
	name    string
	workers int
}

// add keeps the cells of some rounds.
func (r *report) add(results []roundResult) {
	if r.measured == nil {
		r.measured = map[cellKey][]cell{}
	}
	for _, res := range results {
		for name, c := range res.cells {
			k := cellKey{name, res.workers}
			r.measured[k] = append(r.measured[k], c)
		}
	}
}

// rows are the table's cells in a fixed order, whatever order they ran in: the rotation cells of
// each concurrency together, then /api/me, then sign-in.
func (r *report) rows() []cell {
	var keys []cellKey
	for k := range r.measured {
		keys = append(keys, k)
	}
	order := []string{cellRefreshHTTP, cellRefreshUnbatched, cellRefreshPooled, cellLimit, cellService, cellRefreshSQLite, cellLimitSQLite,
		cellMeCached, cellMePooled, cellMeCold, cellPageValid, cellPageExpired, cellPageValidSQLite, cellPageExpiredSQLite, cellLogin}
	group := map[string]int{cellRefreshHTTP: 0, cellRefreshUnbatched: 0, cellRefreshPooled: 0, cellLimit: 0, cellService: 0,
		cellRefreshSQLite: 1, cellLimitSQLite: 1, cellMeCached: 2, cellMePooled: 2, cellMeCold: 2,
		cellPageValid: 3, cellPageExpired: 3, cellPageValidSQLite: 3, cellPageExpiredSQLite: 3, cellLogin: 4}
	kind := func(name string) int { return slices.Index(order, name) }
	slices.SortFunc(keys, func(a, b cellKey) int {
		if ga, gb := group[a.name], group[b.name]; ga != gb {
			return cmp.Compare(ga, gb)
		}
		if a.workers != b.workers {
			return cmp.Compare(a.workers, b.workers)
		}
		return cmp.Compare(kind(a.name), kind(b.name))
	})
	var rows []cell
	for _, k := range keys {
		rows = append(rows, merge(r.measured[k]))
	}
	return rows
}

// ratioTarget is what issue 6 asks of refresh over HTTP at 16 workers, as a share of the limit.
var ratioTarget = target{limit: 0.60, atLeast: true}

func (b *bench) describeMachine(ctx context.Context, r *report) error {
	version, err := postgresVersion(ctx, b.main.db)
	if err != nil {
		return err
	}
	free, _ := exec.CommandContext(ctx, "free", "-h").Output()
	r.refreshBatch, r.refreshBatchKnown = b.cfg.refreshBatch, b.cfg.refreshBatchKnown
	r.machine = []string{
		fmt.Sprintf("CPUs (nproc): %d, %s", runtime.NumCPU(), cpuModel()),
		"PostgreSQL: " + version,
		"SQLite: " + b.sqliteLim.sqliteVersion(ctx) + " (modernc, through github.com/glebarez/go-sqlite and database/sql; WAL, synchronous=NORMAL, BEGIN IMMEDIATE)",
		"Go: " + runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH,
		"Served: " + b.servedThrough(ctx),
		"free -h:\n" + strings.TrimRight(string(free), "\n"),
	}
	return nil
}

// servedThrough says how the servers reach PostgreSQL: the main one directly, the pooled one
// (-pgbouncer) through PgBouncer; and their statement modes.
func (b *bench) servedThrough(ctx context.Context) string {
	mode := b.opts.pgStatements
	if mode == "" {
		mode = "the default (cache)"
	}
	main := "main server directly to PostgreSQL, GATEHOUSE_PG_STATEMENTS " + mode +
		"; unbatched server likewise, on a database of its own, with GATEHOUSE_REFRESH_BATCH=off" +
		"; SQLite server on a file in the run's directory (DATABASE_URL=sqlite:PATH)"
	if b.opts.pgbouncer == "" {
		return main
	}
	version, _ := exec.CommandContext(ctx, "pgbouncer", "--version").Output()
	first, _, _ := strings.Cut(string(version), "\n")
	return fmt.Sprintf("%s; pooled server (the PgBouncer cells) through %s in transaction pooling (%s) on a database of its own, GATEHOUSE_PG_STATEMENTS %s, revocation feed direct",
		main, first, harness.PgBouncerConfigPath, b.opts.pgbouncer)
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func (r *report) printMain(w io.Writer) {
	fmt.Fprintln(w, "## Machine")
	fmt.Fprintln(w)
	for _, line := range r.machine {
		if strings.Contains(line, "\n") {
			fmt.Fprintf(w, "```\n%s\n```\n", line)
			continue
		}
		fmt.Fprintln(w, "- "+line)
	}
	fmt.Fprintf(w, "\n## Cells (%s each after a %s warm-up; rotation cells in %d rounds; order seed %d)\n\n", r.duration, r.warmup, r.rounds, r.seed)
	rows := r.rows()
	printCells(w, rows)
	fmt.Fprintln(w, "\nreq/s counts successes; p50 and p99 are over successes only. cached: the token the server signed")
	fmt.Fprintln(w, "itself at a refresh just before (its verified-signature cache holds it); cold: tokens signed by the")
	fmt.Fprintln(w, "bench's own auth.Service, each presented once, so every request checks an Ed25519 signature.")
	for _, c := range rows {
		if c.name == cellMeCold && c.elapsed < r.duration-r.duration/20 {
			fmt.Fprintf(w, "The cold cell with %d workers ran out of tokens after %s (-cold-tokens %d).\n", c.workers, c.elapsed.Round(10*time.Millisecond), r.coldTokens)
		}
	}
	r.printRatios(w)
	r.printPooled(w)
	r.printBatching(w)
	r.printSQLite(w)
	r.printStorm(w)
	r.printPages(w)
}

// printPooled sets the server behind PgBouncer beside the direct one, per round (-pgbouncer).
func (r *report) printPooled(w io.Writer) {
	if r.pooledOverDirect == nil {
		return
	}
	fmt.Fprintln(w, "\n## Through PgBouncer as a share of direct, per round")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| cell | workers | direct | through PgBouncer | PgBouncer / direct |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: |")
	for _, side := range []struct {
		name string
		m    map[int]*comparison
	}{{"POST /auth/refresh (HTTP)", r.pooledOverDirect}, {"GET /api/me (bearer, cached)", r.mePooledOverDirect}} {
		for _, n := range slices.Sorted(maps.Keys(side.m)) {
			c := side.m[n]
			fmt.Fprintf(w, "| %s | %d | %.0f/s | %.0f/s | %s |\n", side.name, n, merge(c.overCells()).rate(), merge(c.ofCells()).rate(), c.ratioText())
		}
	}
	fmt.Fprintln(w, "\nA round's cells ran back to back, in the order its seed drew: each ratio is the median of the")
	fmt.Fprintln(w, "rounds' ratios (refresh: -rounds rounds; /api/me: one), with the smallest and largest.")
}

// printCells prints cells as a table; a count of failures in a warm-up follows the errors.
func printCells(w io.Writer, cells []cell) {
	fmt.Fprintln(w, "| cell | workers | req/s | p50 | p99 | errors | 429/503 | server RSS | CPU cores: server / bench / machine |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, c := range cells {
		rss := "-"
		if c.rssKiB > 0 {
			rss = fmt.Sprintf("%.1f MiB", float64(c.rssKiB)/1024)
		}
		shedCol := "-"
		if c.name == cellLogin || c.shed > 0 {
			shedCol = fmt.Sprint(c.shed)
		}
		errorsCol := fmt.Sprint(c.errors)
		if c.warmupErrors > 0 {
			errorsCol += fmt.Sprintf(" (+%d in warm-up)", c.warmupErrors)
		}
		fmt.Fprintf(w, "| %s | %d | %.0f | %s | %s | %s | %s | %s | %s |\n", c.name, c.workers, c.rate(), ms(c.p50), ms(c.p99), errorsCol, shedCol, rss, cpuText(c))
	}
}

// cpuText is the CPU column: cores used by the server, this process and the machine.
func cpuText(c cell) string {
	if !c.cpu.known {
		return "-"
	}
	return fmt.Sprintf("%.2f / %.2f / %.2f", c.cpu.server, c.cpu.bench, c.cpu.machine)
}

// printRatios compares refresh over HTTP, and the service, with the limit at each concurrency,
// round by round; 16 workers is the one the issue sets a target for.
func (r *report) printRatios(w io.Writer) {
	fmt.Fprintln(w, "\n## Refresh over HTTP as a share of the limit, per round")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| workers | refresh over HTTP | limit: one statement | HTTP / limit | service, no HTTP / limit |")
	fmt.Fprintln(w, "| ---: | ---: | ---: | ---: | ---: |")
	workers := slices.Sorted(maps.Keys(r.httpOverLimit))
	for _, n := range workers {
		h, s := r.httpOverLimit[n], r.serviceOverLimit[n]
		http, limit := merge(h.ofCells()), merge(h.overCells())
		fmt.Fprintf(w, "| %d | %.0f/s | %.0f/s | %s | %s |\n", n, http.rate(), limit.rate(), h.ratioText(), s.ratioText())
	}
	fmt.Fprintln(w, "\nThe rates are of all rounds together; each ratio is the median of the rounds' ratios (a round's cells ran")
	fmt.Fprintln(w, "back to back), with the smallest and largest; none is given when a cell compared had any error.")
	const targetWorkers = 16
	h, ok := r.httpOverLimit[targetWorkers]
	if !ok {
		fmt.Fprintf(w, "\nTarget of issue 6, refresh over HTTP ≥ %s of the limit at %d workers: no verdict, the run has no %d-worker cells.\n",
			percent(ratioTarget.limit), targetWorkers, targetWorkers)
		return
	}
	fmt.Fprintf(w, "\nTarget of issue 6, refresh over HTTP ≥ %s of the limit at %d workers in every round: %s.\n",
		percent(ratioTarget.limit), targetWorkers, h.verdict(ratioTarget))
}
