package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
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
