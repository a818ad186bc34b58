// Command gatehouse-bench measures what a real `gatehouse serve` on PostgreSQL does per second:
// refresh-token rotation over HTTP, GET /api/me with a bearer token and argon2id sign-in, next to
// "the limit": the same rotation as one prepared statement driven straight from this process.
// `make bench` runs it; BENCHMARKS.md holds a run and explains the numbers.
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
