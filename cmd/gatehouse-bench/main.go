// Command gatehouse-bench measures what a real `gatehouse serve` does per second, on PostgreSQL
// (with refresh batching at its default and off) and on SQLite: refresh-token rotation over HTTP,
// GET /api/me with a bearer token, the devices page and argon2id sign-in, next to "the limits":
// the same rotation driven straight from this process, as one prepared statement on PostgreSQL
// and as one transaction on SQLite. `make bench` runs it; BENCHMARKS.md holds a run and explains
// the numbers.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gatehouse-bench: "+err.Error())
		os.Exit(1)
	}
}
