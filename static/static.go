// Package static holds the portal's own stylesheet, icons and two small scripts, embedded in the
// binary and served under /static. Nothing is fetched from a CDN or any other site.
package static

import "embed"

// FS holds app.css, icons.svg (the kinds of device, one <symbol> each, drawn with <use>),
// passkeys.js (the WebAuthn ceremonies; its buttons show only where the browser has WebAuthn)
// and localtime.js (exact times in the person's own time zone).
//
//go:embed app.css icons.svg passkeys.js localtime.js
var FS embed.FS
