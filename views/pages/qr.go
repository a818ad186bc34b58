package pages

import (
	"fmt"
	"strings"
)

// qrPath is the SVG path of a QR code's dark modules, in module units: one rectangle for each run
// of dark modules in a row, which keeps the path short and its edges on whole units.
func qrPath(modules [][]bool) string {
	var b strings.Builder
	for y, row := range modules {
		for x := 0; x < len(row); {
			if !row[x] {
				x++
				continue
			}
			start := x
			for x < len(row) && row[x] {
				x++
			}
			fmt.Fprintf(&b, "M%d %dh%dv1h-%dz", start, y, x-start, x-start)
		}
	}
	return b.String()
}

// qrTargetPixels is about how wide the QR code is drawn, in CSS pixels: large enough for a phone's
// camera at arm's length, small enough for a phone's screen with the page's margins.
const qrTargetPixels = 220

// qrPixels is the drawn width of a QR code of n modules a side (quiet zone included): a whole
// number of pixels per module, so that no module is drawn a pixel wider than its neighbour.
func qrPixels(n int) int {
	if n <= 0 {
		return 0
	}
	scale := (qrTargetPixels + n - 1) / n
	return n * scale
}
