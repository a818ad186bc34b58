package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// perfRecording is `perf record` attached to the server for the length of one cell.
type perfRecording struct {
	cmd *exec.Cmd
	out string
}

// startPerf samples the process pid (499 Hz, with call graphs) until stop.
func startPerf(ctx context.Context, pid int, out string) (*perfRecording, error) {
	if _, err := exec.LookPath("perf"); err != nil {
		return nil, errors.New("-perf needs the perf tool (Debian: apt-get install linux-perf)")
	}
	cmd := exec.CommandContext(ctx, "perf", "record", "-q", "-F", "499", "-g", "-p", strconv.Itoa(pid), "-o", out)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("perf record: %w", err)
	}
	return &perfRecording{cmd: cmd, out: out}, nil
}

// stop ends the recording (SIGINT makes perf write its file) and returns the top symbols by self time.
func (p *perfRecording) stop() (string, error) {
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	if err := p.cmd.Wait(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) { // perf exits non-zero after SIGINT on some versions; the file is what matters
			return "", fmt.Errorf("perf record: %w", err)
		}
	}
	out, err := exec.Command("perf", "report", "-i", p.out, "--stdio", "--no-children", "-g", "none",
		"--sort", "dso,symbol", "--percent-limit", "1").Output()
	if err != nil {
		return "", fmt.Errorf("perf report: %w", err)
	}
	return topLines(string(out), 30), nil
}

// topLines keeps the first n lines that are neither empty nor comments, with their columns
// (overhead, object, kind, symbol) squeezed and perf's empty trailing columns ("-") dropped.
func topLines(text string, n int) string {
	var keep []string
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || strings.HasPrefix(line, "#") {
			continue
		}
		for len(f) > 4 && f[len(f)-1] == "-" {
			f = f[:len(f)-1]
		}
		if keep = append(keep, fmt.Sprintf("%7s  %-18s %s %s", f[0], f[1], f[2], strings.Join(f[3:], " "))); len(keep) == n {
			break
		}
	}
	return strings.Join(keep, "\n")
}

// perfCell records the main server with perf during one more refresh cell at -profile-workers
// (after its warm-up, which perf does not see) and prints the cell and the top symbols. It runs
// after the table, so that perf's sampling weighs on none of its cells.
func (b *bench) perfCell(ctx context.Context, stdout io.Writer) error {
	w, pid, do := b.opts.profileWorkers, b.main.server.PID(), b.refreshOp(b.main)
	warm := drive(ctx, cellRefreshHTTP, w, b.opts.warmup, pid, do)
	perf, err := startPerf(ctx, pid, b.opts.perfOut)
	if err != nil {
		return err
	}
	c := drive(ctx, cellRefreshHTTP, w, b.opts.duration, pid, do)
	top, err := perf.stop()
	if err != nil {
		return err
	}
	c.warmupErrors, c.rssKiB = warm.errors+warm.shed, rssKiB(pid)
	fmt.Fprintf(stdout, "\n## Server CPU during one more refresh cell (perf, self time by symbol)\n\n")
	printCells(stdout, []cell{c})
	fmt.Fprintf(stdout, "\n```\n%s\n```\n", top)
	return nil
}

// pprofCell serves once more with GATEHOUSE_CPU_PROFILE, drives the profiled refresh cell (with
// its warm-up) against that server alone, on the main database and devices, stops it so that it
// writes the profile, and prints `go tool pprof -top`. The profile covers the server's whole life:
// its start (migration check, one argon2id hash for the dummy password) is a fraction of a second
// beside the cell.
func (b *bench) pprofCell(ctx context.Context, stdout io.Writer) error {
	_ = os.Remove(b.opts.cpuProfile)
	srv, err := startServer(ctx, b.main.setup, "GATEHOUSE_CPU_PROFILE="+b.opts.cpuProfile)
	if err != nil {
		return err
	}
	profiled := &instance{db: b.main.db, setup: b.main.setup, server: srv, api: newAPI(srv.URL), devices: b.main.devices}
	c := b.warmThenDrive(ctx, cellRefreshHTTP, b.opts.profileWorkers, b.opts.duration, srv, b.refreshOp(profiled))
	if err := stopServer(srv); err != nil {
		return err
	}
	if _, err := os.Stat(b.opts.cpuProfile); err != nil {
		return fmt.Errorf("the server wrote no CPU profile to %s: `gatehouse serve` needs GATEHOUSE_CPU_PROFILE support", b.opts.cpuProfile)
	}
	top, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=30", b.setup.bin, b.opts.cpuProfile).CombinedOutput()
	if err != nil {
		return fmt.Errorf("go tool pprof: %v\n%s", err, top)
	}
	fmt.Fprintf(stdout, "\n## Server CPU profile during the refresh cell (go tool pprof -top)\n\n")
	printCells(stdout, []cell{c})
	fmt.Fprintf(stdout, "\n```\n%s\n```\n", strings.TrimRight(string(top), "\n"))
	return nil
}
