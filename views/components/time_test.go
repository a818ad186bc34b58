package components

import (
	"testing"
	"time"
)

func TestRelative(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		ago  time.Duration
		want string
	}{
		{0, "just now"},
		{59 * time.Second, "just now"},
		{time.Minute, "1 minute ago"},
		{5 * time.Minute, "5 minutes ago"},
		{3 * time.Hour, "3 hours ago"},
		{25 * time.Hour, "1 day ago"},
		{6 * 24 * time.Hour, "6 days ago"},
		{8 * 24 * time.Hour, "2 Mar 2026"},
	}
	for _, c := range cases {
		if got := Relative(now, now.Add(-c.ago)); got != c.want {
			t.Errorf("Relative(-%v) = %q, want %q", c.ago, got, c.want)
		}
	}
}
