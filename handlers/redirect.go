package handlers

import (
	"net/url"
	"strings"
)

// safeNext returns where to go after sign-in: a path on the portal, or a URL on a configured app
// origin. Anything else (other hosts, scheme-relative "//host", backslashes, control characters)
// falls back to /devices, so the portal is never an open redirect.
func (s *Server) safeNext(next string) string {
	const fallback = "/devices"
	if next == "" || len(next) > 2048 || strings.ContainsAny(next, "\\\r\n\t") {
		return fallback
	}
	for _, r := range next {
		if r < 0x20 || r == 0x7f {
			return fallback
		}
	}
	if strings.HasPrefix(next, "/") {
		if strings.HasPrefix(next, "//") {
			return fallback
		}
		u, err := url.Parse(next)
		if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
			return fallback
		}
		return next
	}
	u, err := url.Parse(next)
	if err != nil || u.User != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fallback
	}
	if s.appOrigin(u.Scheme+"://"+u.Host) || strings.EqualFold(u.Scheme+"://"+u.Host, s.origin) {
		return u.String()
	}
	return fallback
}
