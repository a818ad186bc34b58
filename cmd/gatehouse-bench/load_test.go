package main

import (
	"testing"
	"time"
)

// Percentiles are over successful requests only: a cell whose failures are slow (timeouts) or
// quick (early 401s) must show the latency of the work it measures.
func TestPercentilesCountSuccessesOnly(t *testing.T) {
	var quickWork, slowFailures tally
	for range 90 {
		quickWork.add(succeeded, time.Millisecond)
	}
	for range 60 {
		slowFailures.add(failed, time.Second)
		slowFailures.add(shed, 2*time.Second)
	}
	c := summarize("cell", 2, []tally{quickWork, slowFailures})
	if c.p50 != time.Millisecond || c.p99 != time.Millisecond {
		t.Errorf("p50 %s, p99 %s; want 1ms for both: only the 90 successes count", c.p50, c.p99)
	}
	if c.ok != 90 || c.errors != 60 || c.shed != 60 {
		t.Errorf("ok %d, errors %d, 429/503 %d; want 90, 60, 60", c.ok, c.errors, c.shed)
	}

	merged := merge([]cell{c, summarize("cell", 1, []tally{slowFailures})})
	if merged.p99 != time.Millisecond || merged.errors != 120 {
		t.Errorf("merged rounds: p99 %s, errors %d; want 1ms and 120", merged.p99, merged.errors)
	}
}

func TestPercentileIsNearestRank(t *testing.T) {
	var sorted []time.Duration
	for i := 1; i <= 100; i++ {
		sorted = append(sorted, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{0.50, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}} {
		if got := percentile(sorted, tc.p); got != tc.want {
			t.Errorf("percentile(1..100 ms, %v) = %s, want %s", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile of nothing = %s, want 0", got)
	}
}
