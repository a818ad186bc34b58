package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// device is one signed-in device and its refresh chain as its client sees it. One worker owns it.
type device struct {
	id        string // X-Device-Id
	refresh   string // the chain's live refresh token, as far as this client knows
	access    string // the latest access token
	rotations int    // successful rotations this client saw
}

// outcome is how one request went, after checking its answer.
type outcome int

const (
	succeeded outcome = iota
	failed            // a wrong status, a bad answer or a transport error
	refused           // 429 or 503: the server shed load, as it is meant to under a sign-in flood
	outcomes
)

// cell is one row of the table: one kind of request at one concurrency.
type cell struct {
	name     string
	workers  int
	ok       int
	errors   int
	refused  int
	elapsed  time.Duration
	p50, p99 time.Duration // over every request of the cell, failed ones included
	rssKiB   int64         // the server's VmRSS at the end of the cell; 0 for cells without the server
	cpu      cpuUse        // cores used during the cell by the server, this process and the machine

	latencies []time.Duration // sorted, kept so that rounds of one cell can be merged
}

// rate is successful requests per second.
func (c cell) rate() float64 {
	if c.elapsed <= 0 {
		return 0
	}
	return float64(c.ok) / c.elapsed.Seconds()
}

// op does one request of one worker (its n-th) and checks the answer.
type op func(ctx context.Context, worker, n int) outcome

// drive runs workers goroutines that each call op back to back for d, and measures them, counting
// the CPU of the server process serverPID too. Requests in flight at the deadline finish and count.
func drive(ctx context.Context, name string, workers int, d time.Duration, serverPID int, do op) cell {
	latencies := make([][]time.Duration, workers)
	counts := make([][outcomes]int, workers)
	cpuStart := sampleCPU(serverPID)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for n := 0; time.Now().Before(deadline) && ctx.Err() == nil; n++ {
				t := time.Now()
				o := do(ctx, w, n)
				latencies[w] = append(latencies[w], time.Since(t))
				counts[w][o]++
			}
		})
	}
	wg.Wait()
	c := cell{name: name, workers: workers, elapsed: time.Since(start), cpu: cpuStart.until(sampleCPU(serverPID))}
	var all []time.Duration
	for w := range workers {
		all = append(all, latencies[w]...)
		c.ok += counts[w][succeeded]
		c.errors += counts[w][failed]
		c.refused += counts[w][refused]
	}
	slices.Sort(all)
	c.latencies, c.p50, c.p99 = all, percentile(all, 0.50), percentile(all, 0.99)
	return c
}

// merge adds the rounds of one cell up into one cell; RSS is the last round's.
func merge(rounds []cell) cell {
	c := cell{name: rounds[0].name, workers: rounds[0].workers, rssKiB: rounds[len(rounds)-1].rssKiB, cpu: cpuUse{known: true}}
	var all []time.Duration
	for _, r := range rounds {
		c.ok, c.errors, c.refused = c.ok+r.ok, c.errors+r.errors, c.refused+r.refused
		c.elapsed += r.elapsed
		all = append(all, r.latencies...)
		w := r.elapsed.Seconds()
		c.cpu.server, c.cpu.bench, c.cpu.machine = c.cpu.server+w*r.cpu.server, c.cpu.bench+w*r.cpu.bench, c.cpu.machine+w*r.cpu.machine
		c.cpu.known = c.cpu.known && r.cpu.known
	}
	if total := c.elapsed.Seconds(); total > 0 {
		c.cpu.server, c.cpu.bench, c.cpu.machine = c.cpu.server/total, c.cpu.bench/total, c.cpu.machine/total
	}
	slices.Sort(all)
	c.latencies, c.p50, c.p99 = all, percentile(all, 0.50), percentile(all, 0.99)
	return c
}

// percentile is the nearest-rank percentile of sorted latencies.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// ms formats a latency in milliseconds.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000)
}
