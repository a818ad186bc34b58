package components

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestRelative(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		ago  time.Duration
		want string
	}{
		{-30 * time.Second, "just now"},
		{0, "just now"},
		{59 * time.Second, "just now"},
		{time.Minute, "1 minute ago"},
		{5 * time.Minute, "5 minutes ago"},
		{59*time.Minute + 59*time.Second, "59 minutes ago"},
		{time.Hour, "1 hour ago"},
		{3 * time.Hour, "3 hours ago"},
		{23 * time.Hour, "23 hours ago"},
		{25 * time.Hour, "1 day ago"},
		{2 * 24 * time.Hour, "2 days ago"},
		{6 * 24 * time.Hour, "6 days ago"},
		{7 * 24 * time.Hour, "3 Mar 2026"},
		{400 * 24 * time.Hour, "3 Feb 2025"},
	}
	for _, tt := range tests {
		if got := Relative(now, now.Add(-tt.ago)); got != tt.want {
			t.Errorf("Relative(now, now-%v) = %q, want %q", tt.ago, got, tt.want)
		}
	}
}

func TestExactAndMachineTimeAreUTC(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	at := time.Date(2026, 3, 10, 13, 4, 5, 0, paris)
	if got, want := Exact(at), "10 Mar 2026, 12:04:05 UTC"; got != want {
		t.Errorf("Exact = %q, want %q", got, want)
	}
	if got, want := MachineTime(at), "2026-03-10T12:04:05Z"; got != want {
		t.Errorf("MachineTime = %q, want %q", got, want)
	}
}

// The exact time after a relative one is UTC as rendered, and says so; the page's script rewrites
// the span carrying the machine time into the person's zone.
func TestTimeShowsTheExactTimeInUTC(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	var b strings.Builder
	if err := Time(now, now.Add(-5*time.Minute)).Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, want := range []string{`<time datetime="2026-03-10T11:55:00Z"`, `>5 minutes ago</time>`, `data-utc="2026-03-10T11:55:00Z"`, `(10 Mar 2026, 11:55 UTC)`} {
		if !strings.Contains(html, want) {
			t.Errorf("%s does not contain %s", html, want)
		}
	}
}
