package main

import (
	"fmt"
	"slices"
	"strings"
)

// comparison is one figure of issue 6 that sets two cells side by side, measured back to back
// once per repeat: the HTTP refresh rate over the limit's, refresh p50 at a million stored tokens
// over p50 at ten thousand. One repeat says little on a shared machine; the spread of several says
// how much to trust the median.
type comparison struct {
	metric  func(cell) float64 // rate, p50 or p99
	format  func(float64) string
	repeats []pair
}

// pair is one repeat: the ratio is metric(of) / metric(over).
type pair struct{ of, over cell }

// target is what issue 6 asks of a comparison's ratio.
type target struct {
	limit   float64
	atLeast bool // the ratio must be at least limit; otherwise at most limit
}

func (t target) meets(ratio float64) bool {
	if t.atLeast {
		return ratio >= t.limit
	}
	return ratio <= t.limit
}

// problems lists what makes the comparison unfit for a ratio, every cell it compares included;
// none when every one of them had zero errors (warm-up included) and some successes.
func (c comparison) problems() []string {
	if len(c.repeats) == 0 {
		return []string{"nothing was measured"}
	}
	var list []string
	for _, side := range [][]cell{c.ofCells(), c.overCells()} {
		if p := merge(side).problems(); p != "" {
			list = append(list, p)
		}
		for i, one := range side {
			if one.ok == 0 {
				list = append(list, fmt.Sprintf("%s at %d workers had no successful request in repeat %d", one.name, one.workers, i+1))
			}
		}
	}
	return list
}

// ratios is the ratio of each repeat.
func (c comparison) ratios() []float64 {
	var r []float64
	for _, p := range c.repeats {
		r = append(r, c.metric(p.of)/c.metric(p.over))
	}
	return r
}

// ratioText is the median ratio with its spread, or the refusal to give one and why.
func (c comparison) ratioText() string {
	if problems := c.problems(); len(problems) > 0 {
		return "no ratio: " + strings.Join(problems, "; ")
	}
	lo, med, hi := spread(c.ratios())
	return fmt.Sprintf("median %s (min %s, max %s, n=%d)", c.format(med), c.format(lo), c.format(hi), len(c.repeats))
}

// verdict is "met" when every repeat meets the target, "not met" when none does and "undecided"
// when the repeats disagree; it is refused, with the reason, when any cell compared had an error.
func (c comparison) verdict(t target) string {
	if problems := c.problems(); len(problems) > 0 {
		return "verdict refused: " + strings.Join(problems, "; ")
	}
	ratios := c.ratios()
	met := 0
	for _, r := range ratios {
		if t.meets(r) {
			met++
		}
	}
	switch met {
	case len(ratios):
		return "met"
	case 0:
		return "not met"
	}
	return fmt.Sprintf("undecided: %d of %d repeats met it", met, len(ratios))
}

// spread is the smallest, the median and the largest of xs (not empty).
func spread(xs []float64) (lo, median, hi float64) {
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	median = s[n/2]
	if n%2 == 0 {
		median = (s[n/2-1] + s[n/2]) / 2
	}
	return s[0], median, s[n-1]
}

func percent(r float64) string { return fmt.Sprintf("%.0f%%", 100*r) }
func times(r float64) string   { return fmt.Sprintf("%.2f×", r) }

func rateOf(c cell) float64 { return c.rate() }
func p50Of(c cell) float64  { return float64(c.p50) }
func p99Of(c cell) float64  { return float64(c.p99) }

// ofCells and overCells are the two sides of the comparison, one cell per repeat.
func (c comparison) ofCells() []cell {
	var cells []cell
	for _, p := range c.repeats {
		cells = append(cells, p.of)
	}
	return cells
}

func (c comparison) overCells() []cell {
	var cells []cell
	for _, p := range c.repeats {
		cells = append(cells, p.over)
	}
	return cells
}
