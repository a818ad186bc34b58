package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

const usage = `gatehouse: an account and device-session portal.

Usage:
  gatehouse [serve] [flags]        run the portal (the default)
  gatehouse migrate [flags]        bring the database schema up to date
  gatehouse user create --email E [--name N] --password-stdin
  gatehouse user disable --email E
  gatehouse user signout --email E
  gatehouse keys rotate [flags]    make a new signing key current
  gatehouse prune [flags]          delete expired and long-revoked tokens and sessions

Every command takes --help. Configuration comes from environment variables, each with a flag of
the same meaning (GATEHOUSE_ADDR is --addr); see the README.
`

// errUsage marks a command-line mistake (exit status 2).
var errUsage = errors.New("usage")

// errHelp is returned after printing help (exit status 0).
var errHelp = flag.ErrHelp

func exitCode(err error) int {
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

// run is the whole program: main only wires it to the process.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
		fmt.Fprint(stdout, usage)
		return nil
	}
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serveCommand(ctx, args, getenv, stdout, stderr)
	case "migrate":
		err = migrateCommand(ctx, args, getenv, stdout, stderr)
	case "user":
		err = userCommand(ctx, args, getenv, stdin, stdout, stderr)
	case "keys":
		err = keysCommand(ctx, args, getenv, stdout, stderr)
	case "prune":
		err = pruneCommand(ctx, args, getenv, stdout, stderr)
	default:
		return fmt.Errorf("%w: unknown command %q; run gatehouse --help", errUsage, cmd)
	}
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}
