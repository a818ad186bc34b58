package components

import (
	"strconv"
	"strings"
	"time"
)

// Lifetime says how long a link works, as pages and messages show it: "30 minutes", "1 hour",
// "1 hour 30 minutes", "2 days", "less than a minute". It counts whole minutes.
func Lifetime(d time.Duration) string {
	if d < time.Minute {
		return "less than a minute"
	}
	days, hours, minutes := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour), int(d%time.Hour/time.Minute)
	if hours == 0 && minutes == 0 {
		return units(days, "day")
	}
	hours += 24 * days
	var parts []string
	if hours > 0 {
		parts = append(parts, units(hours, "hour"))
	}
	if minutes > 0 {
		parts = append(parts, units(minutes, "minute"))
	}
	return strings.Join(parts, " ")
}

func units(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}
