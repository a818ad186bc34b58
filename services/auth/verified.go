package auth

import (
	"crypto/sha256"
	"sync"
	"time"
)

// verifiedTokens remembers access tokens whose signature, issuer and claims were already checked,
// until they expire, so that an app presenting the same bearer token again costs a hash and a map
// lookup rather than an Ed25519 verification. Keys are SHA-256 digests: no token is kept. Revocation
// is not cached here: Verify checks it on every request.
type verifiedTokens struct {
	mu     sync.Mutex
	claims map[[sha256.Size]byte]*AccessClaims
	max    int
}

func newVerifiedTokens(max int) *verifiedTokens {
	return &verifiedTokens{claims: make(map[[sha256.Size]byte]*AccessClaims), max: max}
}

func (v *verifiedTokens) get(raw string, now time.Time) (*AccessClaims, bool) {
	key := sha256.Sum256([]byte(raw))
	v.mu.Lock()
	c, ok := v.claims[key]
	v.mu.Unlock()
	if !ok || !now.Before(c.ExpiresAt.Time) {
		return nil, false
	}
	return c, true
}

// put remembers claims; when full it starts over, which bounds memory without bookkeeping
// (a forgotten token is only verified once more).
func (v *verifiedTokens) put(raw string, c *AccessClaims) {
	key := sha256.Sum256([]byte(raw))
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.claims) >= v.max {
		clear(v.claims)
	}
	v.claims[key] = c
}
