package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// device is one signed-in device and its refresh chain as its client sees it. One worker owns it.
type device struct {
	id        string // X-Device-Id, or the device cookie of a browser
	refresh   string // the chain's live refresh token, as far as this client knows
	access    string // the latest access token
	rotations int    // successful rotations this client saw

	// A browser's other cookies (the page cells): its CSRF cookie, and an access token of its own
	// session that expired, which it presents to take the silent-refresh path.
	csrf, expiredAccess string

	// declined holds the refresh tokens the server refused for good (401, or the service's and
	// the statement's refusals); revived counts those that succeeded when presented again, which
	// the token rules forbid. The fork check reports both.
	declined map[string]bool
	revived  int
}

// rotated records that presenting presented moved the chain on to next.
func (d *device) rotated(presented, next, access string) {
	if d.declined[presented] {
		d.revived++
	}
	d.refresh = next
	if access != "" {
		d.access = access
	}
	d.rotations++
}

// refused records that the server refused presented for good. The client keeps presenting it (it
// has nothing else), so that a later success is seen.
func (d *device) refused(presented string) {
	if d.declined == nil {
		d.declined = map[string]bool{}
	}
	d.declined[presented] = true
}

// outcome is how one request went, after checking its answer.
type outcome int

const (
	succeeded outcome = iota
	failed            // a wrong status, a bad answer or a transport error
	shed              // 429 or 503: the server shed load, as it is meant to under a sign-in flood
	exhausted         // the worker has nothing left to send (a cold cell's tokens): it stops, uncounted
)

// tally is what one worker saw: the latency of each successful request and how many requests
// ended each way.
type tally struct {
	latencies []time.Duration // successful requests only
	counts    [exhausted]int
}

// add counts one request. Only successes have a latency that means anything: a refused or broken
// request can be quick (an early 401) or slow (a timeout) for reasons that say nothing about the
// work the cell measures, so percentiles are over successes.
func (t *tally) add(o outcome, latency time.Duration) {
	t.counts[o]++
	if o == succeeded {
		t.latencies = append(t.latencies, latency)
	}
}

// cell is one row of the table: one kind of request at one concurrency.
type cell struct {
	name         string
	workers      int
	ok           int
	errors       int
	shed         int
	warmupErrors int // failed or shed requests of the warm-up before the cell (not in the figures)
	elapsed      time.Duration
	p50, p99     time.Duration // over successful requests only
	rssKiB       int64         // the server's VmRSS at the end of the cell; 0 for cells without the server
	cpu          cpuUse        // cores used during the cell by the server, this process and the machine
	// The page cells: the server's time rendering the page (gatehouse_page_render_seconds_total)
	// and its time on the route's requests (the latency histogram's sum), during the cell.
	rendered, handled time.Duration

	latencies []time.Duration // of successes, sorted, kept so that rounds of one cell can be merged
}

// rate is successful requests per second.
func (c cell) rate() float64 {
	if c.elapsed <= 0 {
		return 0
	}
	return float64(c.ok) / c.elapsed.Seconds()
}

// problems says what makes the cell unfit to compare, "" when nothing does: any failed or shed
// request, in the cell or in its warm-up.
func (c cell) problems() string {
	var what []string
	for _, n := range []struct {
		count int
		text  string
	}{{c.errors, "errors"}, {c.shed, "answers 429/503"}, {c.warmupErrors, "failures in its warm-up"}} {
		if n.count > 0 {
			what = append(what, fmt.Sprintf("%d %s", n.count, n.text))
		}
	}
	if len(what) == 0 {
		return ""
	}
	return fmt.Sprintf("%s at %d workers: %s", c.name, c.workers, strings.Join(what, ", "))
}

// op does one request of one worker (its n-th) and checks the answer.
type op func(ctx context.Context, worker, n int) outcome

// drive runs workers goroutines that each call op back to back for d (or until op says it has
// nothing left), and measures them, counting the CPU of the server process serverPID too.
// Requests in flight at the deadline finish and count.
func drive(ctx context.Context, name string, workers int, d time.Duration, serverPID int, do op) cell {
	tallies := make([]tally, workers)
	cpuStart := sampleCPU(serverPID)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for n := 0; time.Now().Before(deadline) && ctx.Err() == nil; n++ {
				t := time.Now()
				o := do(ctx, w, n)
				if o == exhausted {
					return
				}
				tallies[w].add(o, time.Since(t))
			}
		})
	}
	wg.Wait()
	c := summarize(name, workers, tallies)
	c.elapsed, c.cpu = time.Since(start), cpuStart.until(sampleCPU(serverPID))
	return c
}

// summarize adds the workers' tallies up into a cell (without its times).
func summarize(name string, workers int, tallies []tally) cell {
	c := cell{name: name, workers: workers}
	for _, t := range tallies {
		c.latencies = append(c.latencies, t.latencies...)
		c.ok += t.counts[succeeded]
		c.errors += t.counts[failed]
		c.shed += t.counts[shed]
	}
	slices.Sort(c.latencies)
	c.p50, c.p99 = percentile(c.latencies, 0.50), percentile(c.latencies, 0.99)
	return c
}

// merge adds the rounds of one cell up into one cell; RSS is the last round's.
func merge(rounds []cell) cell {
	c := cell{name: rounds[0].name, workers: rounds[0].workers, rssKiB: rounds[len(rounds)-1].rssKiB, cpu: cpuUse{known: true}}
	for _, r := range rounds {
		c.ok, c.errors, c.shed, c.warmupErrors = c.ok+r.ok, c.errors+r.errors, c.shed+r.shed, c.warmupErrors+r.warmupErrors
		c.elapsed += r.elapsed
		c.latencies = append(c.latencies, r.latencies...)
		w := r.elapsed.Seconds()
		c.cpu.server, c.cpu.bench, c.cpu.machine = c.cpu.server+w*r.cpu.server, c.cpu.bench+w*r.cpu.bench, c.cpu.machine+w*r.cpu.machine
		c.cpu.known = c.cpu.known && r.cpu.known
		c.cpu.database += r.cpu.database
		c.rendered, c.handled = c.rendered+r.rendered, c.handled+r.handled
	}
	if total := c.elapsed.Seconds(); total > 0 {
		c.cpu.server, c.cpu.bench, c.cpu.machine = c.cpu.server/total, c.cpu.bench/total, c.cpu.machine/total
	}
	slices.Sort(c.latencies)
	c.p50, c.p99 = percentile(c.latencies, 0.50), percentile(c.latencies, 0.99)
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
