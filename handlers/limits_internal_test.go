package handlers

import (
	"testing"
	"time"
)

// A lockout says its wait as people do: seconds up to a minute and a half, then whole minutes
// rounded up.
func TestWaitInWords(t *testing.T) {
	for _, c := range []struct {
		wait time.Duration
		want string
	}{
		{0, "1 second"}, {300 * time.Millisecond, "1 second"}, {2 * time.Second, "2 seconds"},
		{1500 * time.Millisecond, "2 seconds"}, {90 * time.Second, "90 seconds"}, {91 * time.Second, "2 minutes"},
		{710 * time.Second, "12 minutes"}, {15 * time.Minute, "15 minutes"}, {15*time.Minute + time.Millisecond, "16 minutes"},
	} {
		if got := waitInWords(c.wait); got != c.want {
			t.Errorf("waitInWords(%v) = %q, want %q", c.wait, got, c.want)
		}
	}
}
