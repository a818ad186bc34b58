package mail

import (
	"testing"
	"time"
)

func TestForHuman(t *testing.T) {
	for d, want := range map[time.Duration]string{
		30 * time.Second:                "less than a minute",
		time.Minute:                     "1 minute",
		30 * time.Minute:                "30 minutes",
		time.Hour:                       "1 hour",
		90 * time.Minute:                "1 hour 30 minutes",
		24 * time.Hour:                  "1 day",
		48 * time.Hour:                  "2 days",
		25 * time.Hour:                  "25 hours",
		7*24*time.Hour + 30*time.Minute: "168 hours 30 minutes",
	} {
		if got := forHuman(d); got != want {
			t.Errorf("forHuman(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestCodesLeft(t *testing.T) {
	for n, want := range map[int]string{0: "You have no recovery codes left: make new ones now.", 1: "You have 1 recovery code left.", 7: "You have 7 recovery codes left."} {
		if got := codesLeft(n); got != want {
			t.Errorf("codesLeft(%d) = %q, want %q", n, got, want)
		}
	}
}
