package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"strings"
)

// Refresh tokens are "ghr_" followed by 32 random bytes in unpadded base64url: 256 bits of secret.
const (
	refreshPrefix    = "ghr_"
	refreshSecretLen = 32
	refreshTokenLen  = len(refreshPrefix) + 43
)

func newRefreshToken(rand io.Reader) (string, error) {
	secret := make([]byte, refreshSecretLen)
	if _, err := io.ReadFull(rand, secret); err != nil {
		return "", err
	}
	return refreshPrefix + base64.RawURLEncoding.EncodeToString(secret), nil
}

// wellFormedRefreshToken rejects anything that could not have been issued, before any database work.
func wellFormedRefreshToken(token string) bool {
	if len(token) != refreshTokenLen || !strings.HasPrefix(token, refreshPrefix) {
		return false
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token[len(refreshPrefix):])
	return err == nil && len(raw) == refreshSecretLen
}

// hashToken is how a refresh token is stored and looked up: SHA-256 of the whole token. The
// token is random with 256 bits of entropy, so a slow hash would add nothing.
func hashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// successorKey derives each refresh token's successor from the token itself:
// successor(T) = "ghr_" + base64url(HMAC-SHA256(key, T)). A retry that presents T again therefore
// gets the very same successor (token rule 2) although only hashes are stored: the server can
// recompute the successor from what the client presents, and nobody without both T and the key can.
type successorKey []byte

func (k successorKey) successor(token string) string {
	mac := hmac.New(sha256.New, k)
	mac.Write([]byte(token))
	return refreshPrefix + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}
