package handlers

import (
	"net/netip"
	"strings"
)

// clientIP is the address of the client: the peer, unless the peer is a trusted proxy, in which
// case X-Forwarded-For is read from the right, skipping trusted proxies, and the first address
// that is not one of them is the client. Garbage in the header stops the walk at the last good hop.
func clientIP(peer string, forwardedFor string, trusted []netip.Prefix) string {
	addr, err := netip.ParseAddr(peer)
	if err != nil {
		return peer
	}
	addr = addr.Unmap()
	if !isTrusted(addr, trusted) || forwardedFor == "" {
		return addr.String()
	}
	hops := strings.Split(forwardedFor, ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return addr.String()
		}
		addr = hop.Unmap()
		if !isTrusted(addr, trusted) {
			return addr.String()
		}
	}
	return addr.String()
}

func isTrusted(addr netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
