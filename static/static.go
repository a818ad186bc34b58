// Package static holds the portal's own stylesheet and its one small script (passkeys.js),
// embedded in the binary and served under /static. Nothing is fetched from a CDN or any other site.
package static

import "embed"

// FS holds app.css and passkeys.js, served as /static/app.css and /static/passkeys.js.
//
//go:embed app.css passkeys.js
var FS embed.FS
