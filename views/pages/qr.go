package pages

import (
	"fmt"
	"strings"
)

// qrPath is the SVG path of a QR code's dark modules: one 1×1 square each, in module units.
func qrPath(modules [][]bool) string {
	var b strings.Builder
	for y, row := range modules {
		for x, dark := range row {
			if dark {
				fmt.Fprintf(&b, "M%d %dh1v1h-1z", x, y)
			}
		}
	}
	return b.String()
}
