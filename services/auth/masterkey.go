package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MasterKeys are the operator's key-encryption keys (GATEHOUSE_MASTER_KEY): the signing keys and
// the server secret are stored in the database sealed under the first; every one listed opens
// what it sealed, so that the master key can be rotated (list the new one first, run
// `gatehouse keys rewrap`, then drop the old one). The database never holds a master key.
type MasterKeys struct {
	keys []masterKey
}

type masterKey struct {
	id   []byte // the first 8 bytes of SHA-256 of the key: which key sealed a value
	aead cipher.AEAD
}

const sealVersion = 1

// ParseMasterKeys reads GATEHOUSE_MASTER_KEY: one or more base64 keys of 32 bytes, comma-separated.
func ParseMasterKeys(value string) (*MasterKeys, error) {
	m := &MasterKeys{}
	for _, part := range strings.Split(value, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(part)
		if err != nil {
			raw, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(part, "="))
		}
		if err != nil || len(raw) != 32 {
			return nil, errors.New("each master key must be 32 random bytes in base64 (make one with: openssl rand -base64 32)")
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(raw)
		m.keys = append(m.keys, masterKey{id: sum[:8], aead: aead})
	}
	if len(m.keys) == 0 {
		return nil, errors.New("no master key given")
	}
	return m, nil
}

// seal encrypts plain under the first master key, bound to what it is (aad).
func (m *MasterKeys) seal(plain []byte, aad string, rand io.Reader) ([]byte, error) {
	k := m.keys[0]
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return nil, err
	}
	out := append([]byte{sealVersion}, k.id...)
	out = append(out, nonce...)
	return k.aead.Seal(out, nonce, plain, []byte(aad)), nil
}

// open decrypts what seal sealed under any of the master keys.
func (m *MasterKeys) open(sealed []byte, aad string) ([]byte, error) {
	if len(sealed) < 1+8 || sealed[0] != sealVersion {
		return nil, fmt.Errorf("%s: not a sealed value", aad)
	}
	id, rest := sealed[1:9], sealed[9:]
	for _, k := range m.keys {
		if string(k.id) != string(id) {
			continue
		}
		if len(rest) < k.aead.NonceSize() {
			return nil, fmt.Errorf("%s: sealed value too short", aad)
		}
		plain, err := k.aead.Open(nil, rest[:k.aead.NonceSize()], rest[k.aead.NonceSize():], []byte(aad))
		if err != nil {
			return nil, fmt.Errorf("%s: does not open under its master key (tampered?): %w", aad, err)
		}
		return plain, nil
	}
	return nil, fmt.Errorf("%s is sealed under a master key that GATEHOUSE_MASTER_KEY does not list", aad)
}

// sealedUnderFirst tells whether a sealed value is sealed under the first (current) master key.
func (m *MasterKeys) sealedUnderFirst(sealed []byte) bool {
	return len(sealed) >= 9 && string(sealed[1:9]) == string(m.keys[0].id)
}
