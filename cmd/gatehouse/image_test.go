package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestContainerImageBuilds builds docs/deploy/Containerfile with podman from the static binary:
// FROM scratch pulls nothing, so it builds offline. The image is not run here: this machine's
// sandbox refuses the setrlimit call podman's runtime makes to start a container (say so, rather
// than pretend). CI installs podman; elsewhere the test skips without it.
func TestContainerImageBuilds(t *testing.T) {
	podman, err := exec.LookPath("podman")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("podman is not installed (.ci/run installs it)")
		}
		t.Skip("podman is not installed")
	}
	dir := t.TempDir()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(dir, "gatehouse"), "./cmd/gatehouse")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("static build: %v\n%s", err, out)
	}
	for _, f := range []struct{ from, to string }{
		{filepath.Join(root, "docs", "deploy", "Containerfile"), "Containerfile"},
		{"/etc/ssl/certs/ca-certificates.crt", "ca-certificates.crt"},
	} {
		b, err := os.ReadFile(f.from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.to), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tag := "localhost/gatehouse-test:" + strings.ToLower(filepath.Base(dir))
	if out, err := exec.Command(podman, "build", "-q", "-t", tag, "-f", filepath.Join(dir, "Containerfile"), dir).CombinedOutput(); err != nil {
		t.Fatalf("podman build: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command(podman, "rmi", "-f", tag).Run() })
	out, err := exec.Command(podman, "image", "inspect", "--format", "{{.Config.User}} {{json .Config.Entrypoint}} {{json .Config.Cmd}} {{len .RootFS.Layers}}", tag).CombinedOutput()
	if err != nil {
		t.Fatalf("podman image inspect: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), `65532:65532 ["/gatehouse"] ["serve"] 2`; got != want {
		t.Errorf("image config %q, want %q (an unprivileged user, the binary and the CA certificates only)", got, want)
	}
}
