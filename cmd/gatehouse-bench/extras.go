package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

// seedBaseline is the smaller table size of the seed comparison.
const seedBaseline = 10_000

// seedComparison measures the profiled refresh cell over HTTP with about 10,000 stored refresh
// tokens and again with -seed-tokens of them: an index lookup should hardly notice.
func (b *bench) seedComparison(ctx context.Context, stdout io.Writer) error {
	conn, err := b.db.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if err := b.trimHistory(ctx, conn); err != nil {
		return err
	}
	var cells []cell
	var sizes []int
	for _, target := range []int{seedBaseline, b.opts.seedTokens} {
		start := time.Now()
		have, err := seedTokensTo(ctx, conn, target)
		if err != nil {
			return err
		}
		b.log("stored refresh tokens: %d (seeding took %s)", have, time.Since(start).Round(time.Millisecond))
		c := b.refreshCell(ctx, b.server, b.opts.profileWorkers, b.opts.duration)
		b.logCell(c)
		cells, sizes = append(cells, c), append(sizes, have)
	}
	fmt.Fprintf(stdout, "\n## Refresh p50 and stored tokens (%d workers)\n\n", b.opts.profileWorkers)
	fmt.Fprintln(stdout, "| stored refresh tokens at the start | req/s | p50 | p99 | errors |")
	fmt.Fprintln(stdout, "| ---: | ---: | ---: | ---: | ---: |")
	for i, c := range cells {
		fmt.Fprintf(stdout, "| %d | %.0f | %s | %s | %d |\n", sizes[i], c.rate(), ms(c.p50), ms(c.p99), c.errors)
	}
	return nil
}

// loginFloodComparison measures the profiled refresh cell alone, then beside -login-flood
// workers that sign in as fast as they can: the argon2id bound should keep refresh p99 sane.
func (b *bench) loginFloodComparison(ctx context.Context, stdout io.Writer) {
	alone := b.refreshCell(ctx, b.server, b.opts.profileWorkers, b.opts.duration)
	b.logCell(alone)
	var flood cell
	done := make(chan struct{})
	go func() {
		defer close(done)
		flood = drive(ctx, cellLogin, b.opts.loginFlood, b.opts.duration, b.server.pid(), b.loginOp("bench-flood"))
	}()
	beside := b.refreshCell(ctx, b.server, b.opts.profileWorkers, b.opts.duration)
	<-done
	flood.rssKiB = b.server.rssKiB()
	b.logCell(beside)
	b.logCell(flood)
	fmt.Fprintf(stdout, "\n## Refresh during a sign-in flood (%d refresh workers, %d sign-in workers)\n\n", b.opts.profileWorkers, b.opts.loginFlood)
	beside.name = cellRefreshHTTP + ", during the flood"
	printCells(stdout, []cell{alone, beside, flood})
}
