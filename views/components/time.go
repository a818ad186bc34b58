// Package components holds the parts pages repeat: form fields, device rows, times.
package components

import (
	"fmt"
	"time"
)

// Relative says how long ago t was, for people: "just now", "5 minutes ago", "2 days ago",
// and a date beyond a week.
func Relative(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute") + " ago"
	case d < 24*time.Hour:
		return plural(int(d/time.Hour), "hour") + " ago"
	case d < 7*24*time.Hour:
		return plural(int(d/(24*time.Hour)), "day") + " ago"
	}
	return t.UTC().Format("2 Jan 2006")
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// Exact is the full UTC time shown in a tooltip.
func Exact(t time.Time) string { return t.UTC().Format("2 Jan 2006, 15:04:05 UTC") }

// MachineTime is the datetime attribute of <time>.
func MachineTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
