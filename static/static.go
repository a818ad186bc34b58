// Package static holds the portal's own stylesheet, embedded in the binary and served under
// /static. Nothing is fetched from a CDN or any other site.
package static

import "embed"

// FS holds app.css, served as /static/app.css.
//
//go:embed app.css
var FS embed.FS
