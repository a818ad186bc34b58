package handlers

import (
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	cases := []struct {
		name, peer, xff, want string
	}{
		{"direct client, header ignored", "203.0.113.9", "198.51.100.1", "203.0.113.9"},
		{"trusted proxy, one hop", "10.0.0.2", "198.51.100.1", "198.51.100.1"},
		{"trusted chain skipped from the right", "10.0.0.2", "198.51.100.1, 10.0.0.7", "198.51.100.1"},
		{"spoofed left part is not believed", "10.0.0.2", "1.2.3.4, 198.51.100.1", "198.51.100.1"},
		{"garbage stops the walk", "10.0.0.2", "198.51.100.1, nonsense", "10.0.0.2"},
		{"trusted proxy without header", "10.0.0.2", "", "10.0.0.2"},
		{"ipv6 loopback proxy", "::1", "2001:db8::1", "2001:db8::1"},
		{"mapped ipv4 peer", "::ffff:203.0.113.9", "", "203.0.113.9"},
	}
	for _, c := range cases {
		if got := clientIP(c.peer, c.xff, trusted); got != c.want {
			t.Errorf("%s: clientIP(%q, %q) = %q, want %q", c.name, c.peer, c.xff, got, c.want)
		}
	}
}
