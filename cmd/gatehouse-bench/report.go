package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// report collects a run's description and cells and prints them as Markdown tables, ready to
// paste into BENCHMARKS.md.
type report struct {
	duration time.Duration
	machine  []string
	cells    []cell
	perfTop  string
}

// ratioTarget is what issue 6 asks of refresh over HTTP at 16 workers, as a share of the limit.
const ratioTarget = 0.60

func (b *bench) describeMachine(ctx context.Context, r *report) error {
	version, err := postgresVersion(ctx, b.db)
	if err != nil {
		return err
	}
	free, _ := exec.CommandContext(ctx, "free", "-h").Output()
	r.machine = []string{
		fmt.Sprintf("CPUs (nproc): %d, %s", runtime.NumCPU(), cpuModel()),
		"PostgreSQL: " + version,
		"Go: " + runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH,
		"free -h:\n" + strings.TrimRight(string(free), "\n"),
	}
	return nil
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
	fmt.Fprintf(w, "\n## Cells (%s each)\n\n", r.duration)
	printCells(w, r.cells)
	r.printRatios(w)
	if r.perfTop != "" {
		fmt.Fprintf(w, "\n## Server CPU during the refresh cell (perf, self time by symbol)\n\n```\n%s\n```\n", r.perfTop)
	}
}

func printCells(w io.Writer, cells []cell) {
	fmt.Fprintln(w, "| cell | workers | req/s | p50 | p99 | errors | 429/503 | server RSS | CPU cores: server / bench / machine |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, c := range cells {
		rss := "-"
		if c.rssKiB > 0 {
			rss = fmt.Sprintf("%.1f MiB", float64(c.rssKiB)/1024)
		}
		refusedCol := "-"
		if c.name == cellLogin || c.refused > 0 {
			refusedCol = fmt.Sprint(c.refused)
		}
		cpu := "-"
		if c.cpu.known {
			cpu = fmt.Sprintf("%.2f / %.2f / %.2f", c.cpu.server, c.cpu.bench, c.cpu.machine)
		}
		fmt.Fprintf(w, "| %s | %d | %.0f | %s | %s | %d | %s | %s | %s |\n", c.name, c.workers, c.rate(), ms(c.p50), ms(c.p99), c.errors, refusedCol, rss, cpu)
	}
}

// printRatios compares refresh over HTTP with the limit at each concurrency; 16 workers is the
// one the issue sets a target for.
func (r *report) printRatios(w io.Writer) {
	fmt.Fprintln(w, "\n## Refresh over HTTP as a share of the limit")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| workers | refresh over HTTP | limit: one statement | HTTP / limit | service, no HTTP / limit |")
	fmt.Fprintln(w, "| ---: | ---: | ---: | ---: | ---: |")
	for _, h := range r.cells {
		if h.name != cellRefreshHTTP {
			continue
		}
		limit, ok := r.find(cellLimit, h.workers)
		if !ok || limit.rate() == 0 {
			continue
		}
		svc, _ := r.find(cellService, h.workers)
		ratio := h.rate() / limit.rate()
		ratioText := fmt.Sprintf("%.0f%%", 100*ratio)
		workers := fmt.Sprint(h.workers)
		if h.workers == 16 {
			verdict := "met"
			if ratio < ratioTarget {
				verdict = "missed"
			}
			workers = "**16**"
			ratioText = fmt.Sprintf("**%s** (target ≥ %.0f%%: %s)", ratioText, 100*ratioTarget, verdict)
		}
		fmt.Fprintf(w, "| %s | %.0f/s | %.0f/s | %s | %.0f%% |\n", workers, h.rate(), limit.rate(), ratioText, 100*svc.rate()/limit.rate())
	}
}

func (r *report) find(name string, workers int) (cell, bool) {
	for _, c := range r.cells {
		if c.name == name && c.workers == workers {
			return c, true
		}
	}
	return cell{}, false
}
