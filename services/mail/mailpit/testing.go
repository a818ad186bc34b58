package mailpit

import (
	"context"
	"os"
	"testing"
)

// New starts Mailpit for one test, in the test's temporary directory unless opts.Dir says
// otherwise, and stops it when the test ends. When Mailpit cannot be built or started, the test
// is skipped with the reason, or fails under CI=true, where the SMTP tests must run.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	srv, err := Start(t.Context(), opts)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Mailpit %s is required under CI=true: %v", Version, err)
		}
		t.Skipf("Mailpit %s is not available, SMTP tests skipped (build it with GOBIN=~/.cache/gatehouse/bin go install %s@%s): %v",
			Version, Module, Version, err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(context.Background()); err != nil {
			t.Errorf("stop mailpit: %v", err)
		}
	})
	return srv
}
