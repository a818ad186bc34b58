// Package static holds the portal's own stylesheet and its two small scripts, embedded in the
// binary and served under /static. Nothing is fetched from a CDN or any other site.
package static

import "embed"

// FS holds app.css, passkeys.js (the WebAuthn ceremonies; its buttons show only where the browser
// has WebAuthn) and localtime.js (exact times in the person's own time zone).
//
//go:embed app.css passkeys.js localtime.js
var FS embed.FS
