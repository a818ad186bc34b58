package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
)

// cellRefreshUnbatched is refresh over HTTP on the server with GATEHOUSE_REFRESH_BATCH=off.
const cellRefreshUnbatched = "POST /auth/refresh (HTTP, unbatched)"

// The goals of issue 16 for batched refreshes on PostgreSQL.
var (
	// refresh over HTTP at 64 workers ≥ 1.5× the better of the limit's cells at 16 and 64 workers
	batchTarget = target{limit: 1.5, atLeast: true}
	// refresh p50 at 1 worker within 10% of the unbatched server's
	batchP50Target = target{limit: 1.10}
)

// The concurrencies the batching goals name.
const (
	batchWorkers = 64
	limitWorkers = 16 // pgbench-style: the limit is the better of its 16- and 64-worker cells
	aloneWorkers = 1
)

// batchGoals collects the rounds the batching goals compare: for each round of 64 workers, the
// main server's refresh over the better of the limit's cells at 16 and 64 workers in the rounds
// of the same number (the n-th round of each concurrency); and at 1 worker, the main server's
// p50 over the unbatched server's in the same round.
func (r *report) batchGoals(results []roundResult) {
	r.batchOverLimit = comparison{metric: rateOf, format: times}
	limits := map[int][]cell{}
	refreshes := map[int]cell{}
	for _, res := range results {
		switch res.workers {
		case limitWorkers:
			limits[res.repeat] = append(limits[res.repeat], res.cells[cellLimit])
		case batchWorkers:
			limits[res.repeat] = append(limits[res.repeat], res.cells[cellLimit])
			refreshes[res.repeat] = res.cells[cellRefreshHTTP]
		}
		r.batchedP50 = appendPairOf(r.batchedP50, res.workers, pair{of: res.cells[cellRefreshHTTP], over: res.cells[cellRefreshUnbatched]}, p50Of, times)
	}
	for _, repeat := range slices.Sorted(maps.Keys(refreshes)) {
		if len(limits[repeat]) != 2 {
			continue
		}
		better := limits[repeat][0]
		if other := limits[repeat][1]; other.rate() > better.rate() {
			better = other
		}
		r.batchOverLimit.repeats = append(r.batchOverLimit.repeats, pair{of: refreshes[repeat], over: better})
	}
}

// printBatching sets the main server (refresh batching at its default) beside the unbatched one,
// gives the batching goals, and the database's CPU per refresh.
func (r *report) printBatching(w io.Writer) {
	fmt.Fprintln(w, "\n## PostgreSQL: refresh batched (main) and unbatched (GATEHOUSE_REFRESH_BATCH=off), per round")
	fmt.Fprintln(w)
	if r.refreshBatchKnown {
		fmt.Fprintf(w, "The served binary lists GATEHOUSE_REFRESH_BATCH (default %q): the main server runs with its default.\n\n", r.refreshBatch)
	} else {
		fmt.Fprintln(w, "The served binary does not list GATEHOUSE_REFRESH_BATCH in `gatehouse serve --help`: it ignores the setting, so both")
		fmt.Fprintln(w, "servers run the same refresh path and their ratios measure only the noise between two equal servers.")
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "| workers | main | unbatched | main / unbatched: rate | main / unbatched: p50 |")
	fmt.Fprintln(w, "| ---: | ---: | ---: | ---: | ---: |")
	for _, n := range slices.Sorted(maps.Keys(r.batchedOverUnbatched)) {
		c := r.batchedOverUnbatched[n]
		fmt.Fprintf(w, "| %d | %.0f/s | %.0f/s | %s | %s |\n", n, merge(c.ofCells()).rate(), merge(c.overCells()).rate(), c.ratioText(), r.batchedP50[n].ratioText())
	}
	if len(r.batchOverLimit.repeats) == 0 {
		fmt.Fprintf(w, "\nGoal of issue 16, refresh over HTTP at %d workers ≥ %s the better of the limit at %d and %d workers: no verdict, the run has no %d- and %d-worker rounds.\n",
			batchWorkers, times(batchTarget.limit), limitWorkers, batchWorkers, limitWorkers, batchWorkers)
	} else {
		c := r.batchOverLimit
		fmt.Fprintf(w, "\nRefresh over HTTP at %d workers (%.0f/s) over the better of the limit's cells at %d and %d workers in the same-numbered rounds (%.0f/s): %s.\n",
			batchWorkers, merge(c.ofCells()).rate(), limitWorkers, batchWorkers, merge(c.overCells()).rate(), c.ratioText())
		fmt.Fprintf(w, "Goal of issue 16, ≥ %s in every round: %s.\n", times(batchTarget.limit), c.verdict(batchTarget))
	}
	if p50, ok := r.batchedP50[aloneWorkers]; ok {
		fmt.Fprintf(w, "Goal of issue 16, refresh p50 at %d worker within 10%% of the unbatched server's (main / unbatched ≤ %s in every round): %s.\n",
			aloneWorkers, times(batchP50Target.limit), p50.verdict(batchP50Target))
	} else {
		fmt.Fprintf(w, "Goal of issue 16, refresh p50 at %d worker within 10%% of the unbatched server's: no verdict, the run has no %d-worker rounds.\n", aloneWorkers, aloneWorkers)
	}
	r.printDatabaseCPU(w)
}

// printDatabaseCPU gives PostgreSQL's CPU time per good request of the PostgreSQL rotation cells.
func (r *report) printDatabaseCPU(w io.Writer) {
	cells := []string{cellRefreshHTTP, cellRefreshUnbatched, cellLimit, cellService}
	if r.pooledOverDirect != nil {
		cells = append(cells, cellRefreshPooled)
	}
	fmt.Fprintln(w, "\n### Database CPU per refresh (µs of PostgreSQL CPU per good request)")
	fmt.Fprintln(w)
	header, rule := "| workers |", "| ---: |"
	for _, name := range cells {
		header, rule = header+" "+name+" |", rule+" ---: |"
	}
	fmt.Fprintln(w, header)
	fmt.Fprintln(w, rule)
	for _, n := range slices.Sorted(maps.Keys(r.batchedOverUnbatched)) {
		row := fmt.Sprintf("| %d |", n)
		for _, name := range cells {
			row += " " + databaseCPUPerRequest(r.measured[cellKey{name, n}]) + " |"
		}
		fmt.Fprintln(w, row)
	}
	fmt.Fprintln(w, "\nutime + stime of every process named postgres (/proc/<pid>/comm) over the cell, all rounds together,")
	fmt.Fprintln(w, "divided by the cell's good requests: the backends of this run's pools and PostgreSQL's own processes")
	fmt.Fprintln(w, "(WAL writer, checkpointer…), and any other client's backends on the same server.")
}

// databaseCPUPerRequest is PostgreSQL's CPU time per good request over the rounds of one cell.
func databaseCPUPerRequest(rounds []cell) string {
	if len(rounds) == 0 {
		return "-"
	}
	c := merge(rounds)
	if c.ok == 0 || !c.cpu.known {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(c.cpu.database.Microseconds())/float64(c.ok))
}
