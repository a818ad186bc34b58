package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// seedBaseline is the smaller table size of the size comparison.
const seedBaseline = 10_000

// The targets of issue 6 that the extras measure.
var (
	sizeTarget  = target{limit: 1.3} // refresh p50 at -seed-tokens stored tokens within 1.3× of p50 at 10,000
	floodTarget = target{limit: 3}   // refresh p99 during a sign-in flood within 3× of p99 without it
)

// Sides of the extra comparisons, as the schedule names them.
const (
	sideSmall = "about 10,000 stored tokens"
	sideBig   = "-seed-tokens stored tokens"
	sideAlone = "refresh alone"
	sideFlood = "refresh during the flood"
)

// sizeComparison measures the refresh cell over HTTP at -profile-workers on two servers that take
// turns, -repeats times each, in an order drawn from the seed: the main one, its token history
// trimmed back to about 10,000 rows before each of its turns, and a second one on a database
// seeded once with -seed-tokens rows. A unique-index lookup should hardly notice the difference.
func (b *bench) sizeComparison(ctx context.Context, stdout io.Writer) error {
	w := b.opts.profileWorkers
	var err error
	if b.big, err = b.startInstance(ctx, "big"); err != nil {
		return err
	}
	if b.big.devices, err = b.big.api.signInDevices(ctx, b.accounts, "bench-big", w, ""); err != nil {
		return err
	}
	smallConn, err := b.main.db.connect(ctx)
	if err != nil {
		return err
	}
	defer smallConn.Close(ctx)
	bigConn, err := b.big.db.connect(ctx)
	if err != nil {
		return err
	}
	defer bigConn.Close(ctx)
	start := time.Now()
	have, err := seedTokensTo(ctx, bigConn, b.opts.seedTokens, b.cfg)
	if err != nil {
		return err
	}
	b.log("stored refresh tokens on %s: %d (seeding took %s)", b.big.db.name, have, time.Since(start).Round(time.Millisecond))

	mainChains := slices.Concat(b.main.devices, b.directDevices, b.main.pageDevices)
	stored := map[string][]int{}
	cells := map[string][]cell{}
	ratio := comparison{metric: p50Of, format: times}
	for i, rd := range schedule(b.rng, []int{w}, b.opts.repeats, sideSmall, sideBig) {
		b.log("size comparison, round %d/%d: %s", i+1, b.opts.repeats, strings.Join(rd.cells, ", then "))
		res := map[string]cell{}
		for _, side := range rd.cells {
			inst, conn := b.big, bigConn
			if side == sideSmall {
				inst, conn = b.main, smallConn
				if err := trimHistory(ctx, conn, mainChains); err != nil {
					return err
				}
				if _, err := seedTokensTo(ctx, conn, seedBaseline, b.cfg); err != nil {
					return err
				}
			}
			n, err := storedTokens(ctx, conn)
			if err != nil {
				return err
			}
			c := b.warmThenDrive(ctx, cellRefreshHTTP, w, b.opts.duration, inst.server, b.refreshOp(inst))
			b.logCell(c)
			res[side], stored[side], cells[side] = c, append(stored[side], n), append(cells[side], c)
		}
		ratio.repeats = append(ratio.repeats, pair{of: res[sideBig], over: res[sideSmall]})
	}

	fmt.Fprintf(stdout, "\n## Refresh p50 and stored tokens (%d workers, %d repeats of %s each)\n\n", w, b.opts.repeats, b.opts.duration)
	fmt.Fprintln(stdout, "| stored refresh tokens at the start | req/s: min / median / max | p50: min / median / max | p99: median | errors |")
	fmt.Fprintln(stdout, "| ---: | ---: | ---: | ---: | ---: |")
	for _, side := range []string{sideSmall, sideBig} {
		fmt.Fprintf(stdout, "| %d to %d | %s | %s | %s | %s |\n", slices.Min(stored[side]), slices.Max(stored[side]),
			spreadOf(cells[side], rateOf, func(r float64) string { return fmt.Sprintf("%.0f", r) }),
			spreadOf(cells[side], p50Of, msOf), medianOf(cells[side], p99Of, msOf), errorsOf(cells[side]))
	}
	fmt.Fprintf(stdout, "\np50 with the many tokens over p50 with the few, repeat by repeat: %s.\n", ratio.ratioText())
	fmt.Fprintf(stdout, "Target of issue 6, within %s in every repeat: %s.\n", times(sizeTarget.limit), ratio.verdict(sizeTarget))
	return nil
}

// storedTokens counts the rows of refresh_tokens.
func storedTokens(ctx context.Context, conn *pgx.Conn) (int, error) {
	var n int
	err := conn.QueryRow(ctx, "SELECT count(*) FROM refresh_tokens").Scan(&n)
	return n, err
}

// loginFloodComparison measures the profiled refresh cell alone, and beside -login-flood workers
// that sign in as fast as they can, -repeats times each in an order drawn from the seed: the
// argon2id bound should keep refresh p99 sane.
func (b *bench) loginFloodComparison(ctx context.Context, stdout io.Writer) error {
	w := b.opts.profileWorkers
	cells := map[string][]cell{}
	var floods []cell
	ratio := comparison{metric: p99Of, format: times}
	for i, rd := range schedule(b.rng, []int{w}, b.opts.repeats, sideAlone, sideFlood) {
		b.log("sign-in flood, round %d/%d: %s", i+1, b.opts.repeats, strings.Join(rd.cells, ", then "))
		res := map[string]cell{}
		for _, side := range rd.cells {
			if side == sideAlone {
				res[side] = b.warmThenDrive(ctx, cellRefreshHTTP, w, b.opts.duration, b.main.server, b.refreshOp(b.main))
				b.logCell(res[side])
				continue
			}
			var flood cell
			done := make(chan struct{})
			go func() {
				defer close(done)
				flood = b.warmThenDrive(ctx, cellLogin, b.opts.loginFlood, b.opts.duration, b.main.server, b.loginOp("bench-flood"))
			}()
			res[side] = b.warmThenDrive(ctx, cellRefreshHTTP, w, b.opts.duration, b.main.server, b.refreshOp(b.main))
			<-done
			b.logCell(res[side])
			b.logCell(flood)
			floods = append(floods, flood)
		}
		cells[sideAlone], cells[sideFlood] = append(cells[sideAlone], res[sideAlone]), append(cells[sideFlood], res[sideFlood])
		ratio.repeats = append(ratio.repeats, pair{of: res[sideFlood], over: res[sideAlone]})
	}
	fmt.Fprintf(stdout, "\n## Refresh during a sign-in flood (%d refresh workers, %d sign-in workers, %d repeats of %s each)\n\n",
		w, b.opts.loginFlood, b.opts.repeats, b.opts.duration)
	during := merge(cells[sideFlood])
	during.name = cellRefreshHTTP + ", during the flood"
	printCells(stdout, []cell{merge(cells[sideAlone]), during, merge(floods)})
	fmt.Fprintf(stdout, "\nRefresh p99 during the flood over p99 alone, repeat by repeat: %s.\n", ratio.ratioText())
	fmt.Fprintf(stdout, "Target of issue 6, within %s in every repeat: %s.\n", times(floodTarget.limit), ratio.verdict(floodTarget))
	return nil
}

// spreadOf is "min / median / max" of metric over cells.
func spreadOf(cells []cell, metric func(cell) float64, format func(float64) string) string {
	lo, med, hi := spread(valuesOf(cells, metric))
	return format(lo) + " / " + format(med) + " / " + format(hi)
}

// medianOf is the median of metric over cells.
func medianOf(cells []cell, metric func(cell) float64, format func(float64) string) string {
	_, med, _ := spread(valuesOf(cells, metric))
	return format(med)
}

func valuesOf(cells []cell, metric func(cell) float64) []float64 {
	var v []float64
	for _, c := range cells {
		v = append(v, metric(c))
	}
	return v
}

// errorsOf is the errors of cells added up, with their warm-ups' failures.
func errorsOf(cells []cell) string {
	m := merge(cells)
	if m.warmupErrors > 0 {
		return fmt.Sprintf("%d (+%d in warm-up)", m.errors+m.shed, m.warmupErrors)
	}
	return fmt.Sprint(m.errors + m.shed)
}

func msOf(d float64) string { return ms(time.Duration(d)) }
