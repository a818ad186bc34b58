package main

import (
	"strings"
	"testing"
	"time"
)

// rateCell is a clean cell of ok successes in one second.
func rateCell(name string, ok int) cell {
	return cell{name: name, workers: 16, ok: ok, elapsed: time.Second}
}

// A ratio and a verdict are given only when every cell compared had zero errors, in every
// repeat and in its warm-up; otherwise the verdict is refused and says why.
func TestVerdictRefusedOnErrors(t *testing.T) {
	clean := func() comparison {
		c := comparison{metric: rateOf, format: percent}
		for _, http := range []int{700, 650, 800} {
			c.repeats = append(c.repeats, pair{of: rateCell(cellRefreshHTTP, http), over: rateCell(cellLimit, 1000)})
		}
		return c
	}
	if got := clean().verdict(ratioTarget); got != "met" {
		t.Fatalf("clean comparison, every repeat ≥ 60%%: verdict %q, want met", got)
	}
	if got := clean().ratioText(); got != "median 70% (min 65%, max 80%, n=3)" {
		t.Errorf("ratio text %q", got)
	}

	for _, tc := range []struct {
		name  string
		spoil func(*cell)
		why   string
	}{
		{"an error", func(c *cell) { c.errors = 1 }, "1 errors"},
		{"a 429", func(c *cell) { c.shed = 2 }, "2 answers 429/503"},
		{"a failure in the warm-up", func(c *cell) { c.warmupErrors = 3 }, "3 failures in its warm-up"},
		{"no success", func(c *cell) { c.ok = 0 }, "no successful request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := clean()
			tc.spoil(&c.repeats[1].over)
			verdict, ratio := c.verdict(ratioTarget), c.ratioText()
			if !strings.HasPrefix(verdict, "verdict refused: ") || !strings.Contains(verdict, cellLimit) || !strings.Contains(verdict, tc.why) {
				t.Errorf("verdict %q: want a refusal naming %q and %q", verdict, cellLimit, tc.why)
			}
			if !strings.HasPrefix(ratio, "no ratio: ") || strings.Contains(ratio, "%") {
				t.Errorf("ratio text %q: want no ratio at all", ratio)
			}
		})
	}
}

func TestVerdictFollowsEveryRepeat(t *testing.T) {
	c := comparison{metric: p50Of, format: times}
	for _, big := range []time.Duration{9, 12, 14} {
		of := cell{name: "big", ok: 1, elapsed: time.Second, p50: big * time.Millisecond}
		over := cell{name: "small", ok: 1, elapsed: time.Second, p50: 10 * time.Millisecond}
		c.repeats = append(c.repeats, pair{of: of, over: over})
	}
	if got := c.verdict(sizeTarget); got != "undecided: 2 of 3 repeats met it" {
		t.Errorf("p50 ratios 0.9, 1.2 and 1.4 against ≤ 1.3: verdict %q", got)
	}
	if got := c.verdict(target{limit: 2}); got != "met" {
		t.Errorf("against ≤ 2: verdict %q, want met", got)
	}
	if got := c.verdict(target{limit: 0.5}); got != "not met" {
		t.Errorf("against ≤ 0.5: verdict %q, want not met", got)
	}
}
