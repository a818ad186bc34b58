package auth_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
)

func hash(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

func kid(t interface{ Fatal(...any) }, token string) string {
	header, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}
