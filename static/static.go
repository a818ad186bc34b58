// Package static holds the portal's own CSS, embedded in the binary and served under /static.
package static

import "embed"

// FS holds app.css; nothing is fetched from anywhere else.
//
//go:embed app.css
var FS embed.FS
