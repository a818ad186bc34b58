package main

import (
	"testing"
	"time"
)

// The batching goal sets each 64-worker round's refresh against the better of the limit's cells
// at 16 and 64 workers in the rounds of the same number, never against another round's.
func TestBatchGoalPairsRoundsOfTheSameNumber(t *testing.T) {
	round := func(workers, repeat, refresh, limit int) roundResult {
		return roundResult{workers: workers, repeat: repeat, cells: map[string]cell{
			cellRefreshHTTP: rateCell(cellRefreshHTTP, refresh), cellRefreshUnbatched: rateCell(cellRefreshUnbatched, refresh),
			cellLimit: rateCell(cellLimit, limit),
		}}
	}
	var r report
	r.batchGoals([]roundResult{
		round(64, 0, 3000, 1000), round(16, 0, 2000, 2500),
		round(16, 1, 2000, 1000), round(64, 1, 3000, 1500),
		round(1, 0, 500, 900),
	})
	got := r.batchOverLimit.ratios()
	if len(got) != 2 || got[0] != 1.2 || got[1] != 2 {
		t.Fatalf("ratios %v, want [1.2 2]: 3000 over 2500 (16 workers beat 64), 3000 over 1500 (64 beat 16)", got)
	}
	if v := r.batchOverLimit.verdict(batchTarget); v != "undecided: 1 of 2 repeats met it" {
		t.Errorf("verdict %q", v)
	}
	if _, ok := r.batchedP50[1]; !ok {
		t.Error("no p50 comparison at 1 worker")
	}
}

// PostgreSQL's CPU over a cell counts what each process used since the first sample, and all of
// what a process that started in between used.
func TestDatabaseCPUBetweenCountsNewProcesses(t *testing.T) {
	start := map[string]time.Duration{"10": time.Second, "11": 2 * time.Second, "12": time.Second}
	end := map[string]time.Duration{"10": 3 * time.Second, "11": 2 * time.Second, "13": 500 * time.Millisecond}
	if got := databaseCPUBetween(start, end); got != 2500*time.Millisecond {
		t.Errorf("%s, want 2.5s: 2s by process 10, 0 by 11, 0.5s by 13 (new); 12 ended", got)
	}
}
