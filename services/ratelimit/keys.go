package ratelimit

import (
	"crypto/sha256"
	"encoding/base64"
	"net/netip"
	"strings"
)

// maxKeyInput is how much of an outside value a key is made from. Emails are at most 254 bytes;
// anything longer is cut before any other work, so that a 60 KB "email" costs what a short one does.
const maxKeyInput = 320

// Key names a counter from outside input: the kind ("login-account") and the value, cut to
// maxKeyInput bytes, trimmed, lower-cased and hashed, so that every key has the same small size
// however large the value sent, and no raw email is kept in memory or in Redis.
func Key(kind, value string) string {
	if len(value) > maxKeyInput {
		value = value[:maxKeyInput]
	}
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(value))))
	return kind + ":" + base64.RawURLEncoding.EncodeToString(sum[:16])
}

// IPKey names a client address's counter. An IPv6 client counts by its /64, the block one
// subscriber is given, so that rotating through the addresses of one network buys no new
// attempts; IPv4 (and IPv4-mapped IPv6) counts by address.
func IPKey(kind, ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return Key(kind, ip)
	}
	addr = addr.Unmap()
	if addr.Is6() {
		addr = netip.PrefixFrom(addr, 64).Masked().Addr()
	}
	return kind + ":" + addr.String()
}
