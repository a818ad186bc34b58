package components

import (
	"fmt"
	"time"
)

// Relative says how long before now t was, for people: "just now", "5 minutes ago", "3 hours ago",
// "2 days ago", and a date once it is a week or more ago. A t slightly after now (clock skew
// between servers) reads "just now".
func Relative(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return ago(int(d/time.Minute), "minute")
	case d < 24*time.Hour:
		return ago(int(d/time.Hour), "hour")
	case d < 7*24*time.Hour:
		return ago(int(d/(24*time.Hour)), "day")
	}
	return t.UTC().Format("2 Jan 2006")
}

func ago(n int, unit string) string {
	if n == 1 {
		return "1 " + unit + " ago"
	}
	return fmt.Sprintf("%d %ss ago", n, unit)
}

// Exact is the full UTC time, shown as the title (tooltip) of a relative time.
func Exact(t time.Time) string { return t.UTC().Format("2 Jan 2006, 15:04:05 UTC") }

// ExactShort is the exact UTC time to the minute, shown after a relative time: "10 Mar 2026,
// 12:04 UTC". The page's script rewrites it into the person's time zone.
func ExactShort(t time.Time) string { return t.UTC().Format("2 Jan 2006, 15:04 UTC") }

// MachineTime is the datetime attribute of <time>: RFC 3339 in UTC.
func MachineTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
