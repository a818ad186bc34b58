package harness

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newTestLog(t *testing.T) *logBuffer {
	t.Helper()
	b, err := newLogBuffer(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// has matches the lines that contain s.
func has(s string) func(string) bool {
	return func(line string) bool { return strings.Contains(line, s) }
}

// WaitForLog finds a line written before the call, and waits for one written after it, whole.
func TestWaitForLogSeesPastAndFutureLines(t *testing.T) {
	b := newTestLog(t)
	b.Write([]byte(`{"msg":"gatehouse serving"}` + "\n" + `{"msg":"stop`))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if line, err := b.waitFor(ctx, MessageIs("gatehouse serving")); err != nil || line != `{"msg":"gatehouse serving"}` {
		t.Fatalf("a line already written: %q, %v", line, err)
	}
	found := make(chan string, 1)
	go func() {
		line, _ := b.waitFor(ctx, MessageIs("stopped"))
		found <- line
	}()
	b.Write([]byte(`ping"}` + "\n")) // completes {"msg":"stopping"}: not the line
	b.Write([]byte(`{"msg":"stopped"}` + "\n"))
	if line := <-found; line != `{"msg":"stopped"}` {
		t.Fatalf("a line written later: %q", line)
	}
	if got := b.String(); !strings.HasSuffix(got, `{"msg":"stopping"}`+"\n"+`{"msg":"stopped"}`+"\n") {
		t.Fatalf("the log keeps %q", got)
	}
}

// Once the process has ended, a line it never wrote is an error, not a wait; its last line counts
// without a newline.
func TestWaitForLogEndsWithTheProcess(t *testing.T) {
	b := newTestLog(t)
	b.Write([]byte("first\nlast without newline"))
	b.finish()
	ctx := context.Background()
	if _, err := b.waitFor(ctx, has("never written")); !errors.Is(err, errNoSuchLine) {
		t.Fatalf("a line never written: %v, want errNoSuchLine", err)
	}
	if line, err := b.waitFor(ctx, has("last without newline")); err != nil || line != "last without newline" {
		t.Fatalf("the unfinished last line: %q, %v", line, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	cancel()
	b = newTestLog(t)
	if _, err := b.waitFor(ctx, has("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("an ended wait: %v", err)
	}
}

// With LogDirect the process writes to the file itself, never through Write: WaitForLog still
// sees the lines written before and after the call, and gives up once the process has ended.
func TestWaitForLogReadsADirectLog(t *testing.T) {
	b := newTestLog(t)
	b.direct = true
	b.file.Write([]byte(`{"msg":"gatehouse serving"}` + "\n" + `{"msg":"stop`))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if line, err := b.waitFor(ctx, MessageIs("gatehouse serving")); err != nil || line != `{"msg":"gatehouse serving"}` {
		t.Fatalf("a line already written: %q, %v", line, err)
	}
	found := make(chan string, 1)
	go func() {
		line, _ := b.waitFor(ctx, MessageIs("stopped"))
		found <- line
	}()
	b.file.Write([]byte(`ped"}` + "\n"))
	if line := <-found; line != `{"msg":"stopped"}` {
		t.Fatalf("a line written later: %q", line)
	}
	b.finish()
	if _, err := b.waitFor(ctx, has("never written")); !errors.Is(err, errNoSuchLine) {
		t.Fatalf("a line never written: %v, want errNoSuchLine", err)
	}
}
