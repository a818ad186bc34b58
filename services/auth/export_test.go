package auth_test

import "crypto/sha256"

func hash(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}
