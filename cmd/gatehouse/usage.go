package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// usageError turns a flag parsing failure into a usage error; --help prints the usage to stdout
// and is not a failure.
func usageError(fs *flag.FlagSet, err error, stdout io.Writer) error {
	if errors.Is(err, errHelp) {
		fs.SetOutput(stdout)
		fs.Usage()
		return errHelp
	}
	return fmt.Errorf("%w: %v", errUsage, err)
}

// examples show each command as people run it, printed by --help after the command's own flags.
var examples = map[string]string{
	"serve":          "GATEHOUSE_BASE_URL=https://portal.example.com DATABASE_URL=postgres://gatehouse@db/gatehouse gatehouse serve --addr 0.0.0.0:8080",
	"migrate":        "DATABASE_URL=postgres://gatehouse@db/gatehouse gatehouse migrate",
	"user create":    "gatehouse user create --email ann@example.com --name Ann   (asks for the password on a terminal)\n  printf '%s\\n' \"$PASSWORD\" | gatehouse user create --email ann@example.com --password-stdin",
	"user disable":   "gatehouse user disable --email ann@example.com",
	"user signout":   "gatehouse user signout --email ann@example.com",
	"user mfa reset": "gatehouse user mfa reset --email ann@example.com",
	"prune":          "gatehouse prune --event-retention 720h",
	"keys rotate":    "gatehouse keys rotate --key-dir /var/lib/gatehouse/keys",
}

// printUsage is --help: what the command does, its own flags, an example, then the settings every
// command takes (each also an environment variable).
func printUsage(fs *flag.FlagSet, name, summary string) {
	out := fs.Output()
	fmt.Fprintf(out, "Usage: gatehouse %s [flags]\n\n%s\n", name, summary)
	shared := map[string]bool{}
	for _, s := range settings {
		shared[s.flag] = true
	}
	var own, config strings.Builder
	fs.VisitAll(func(f *flag.Flag) {
		target := &own
		if shared[f.Name] {
			target = &config
		}
		fmt.Fprintf(target, "  --%s\n    \t%s\n", f.Name, f.Usage)
	})
	if own.Len() > 0 {
		fmt.Fprintf(out, "\nFlags of %s:\n%s", name, own.String())
	}
	if ex := examples[name]; ex != "" {
		fmt.Fprintf(out, "\nExample:\n  %s\n", ex)
	}
	fmt.Fprintf(out, "\nConfiguration (every command; a flag wins over its environment variable):\n%s", config.String())
}
