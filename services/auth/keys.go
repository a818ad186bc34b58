package auth

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Files in the key directory. Signing keys are "signing-<unix seconds>-<kid>.pem" (PKCS#8, mode
// 0600): the newest signs, every one present verifies and is published in the JWKS. secret.key
// holds 32 random bytes from which the refresh-successor and CSRF keys are derived.
const (
	signingKeyPrefix = "signing-"
	secretFile       = "secret.key"
)

// SigningKey is one Ed25519 key pair with its key id. It verifies from the moment it is loaded
// and signs from ActivatesAt on (keys in a directory: at once).
type SigningKey struct {
	ID          string
	CreatedAt   time.Time
	ActivatesAt time.Time
	Private     ed25519.PrivateKey
	Public      ed25519.PublicKey
}

// KeyRing holds the signing keys and the server secret, read from the key directory (the SQLite
// default, or PostgreSQL without a master key) or from the database (OpenDatabaseKeyRing).
// Instances sharing either agree on keys; Reload picks up a key another instance or the CLI added.
type KeyRing struct {
	secret []byte
	load   func() ([]*SigningKey, error) // every key, oldest activation first
	now    func() time.Time

	mu   sync.RWMutex
	keys []*SigningKey // oldest activation first
	byID map[string]*SigningKey
}

// OpenKeyRing loads the key directory, creating it, a first signing key and the secret when missing.
func OpenKeyRing(dir string, rand io.Reader, now time.Time) (*KeyRing, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("key directory: %w", err)
	}
	secret, err := loadOrCreateSecret(filepath.Join(dir, secretFile), rand)
	if err != nil {
		return nil, err
	}
	k := &KeyRing{secret: secret, load: func() ([]*SigningKey, error) { return readSigningKeys(dir) }, now: time.Now}
	if err := k.Reload(); err != nil {
		return nil, err
	}
	if k.Current() == nil {
		if _, err := AddSigningKey(dir, rand, now); err != nil {
			return nil, err
		}
		if err := k.Reload(); err != nil {
			return nil, err
		}
	}
	return k, nil
}

func loadOrCreateSecret(path string, rand io.Reader) ([]byte, error) {
	secret, err := os.ReadFile(path)
	if err == nil {
		if len(secret) != 32 {
			return nil, fmt.Errorf("%s must hold 32 bytes", path)
		}
		return secret, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read secret: %w", err)
	}
	secret = make([]byte, 32)
	if _, err := io.ReadFull(rand, secret); err != nil {
		return nil, err
	}
	if err := writeNewFile(path, secret); err != nil {
		if errors.Is(err, os.ErrExist) { // another process created it first: use theirs
			return loadOrCreateSecret(path, rand)
		}
		return nil, err
	}
	return secret, nil
}

// writeNewFile writes data to a new file with mode 0600, failing if it exists.
func writeNewFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// AddSigningKey writes a new signing key into dir; it becomes the current key of every instance
// that reloads the directory. It returns the key id.
func AddSigningKey(dir string, rand io.Reader, now time.Time) (string, error) {
	pub, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", err
	}
	kid := keyID(pub)
	name := fmt.Sprintf("%s%d-%s.pem", signingKeyPrefix, now.Unix(), kid)
	if err := writeNewFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return "", fmt.Errorf("write signing key: %w", err)
	}
	return kid, nil
}

// RetireSigningKeys deletes every signing key but the newest whose successor was created before
// cutoff: by then every access token it signed has expired. It returns the ids it deleted.
func RetireSigningKeys(dir string, cutoff time.Time) ([]string, error) {
	keys, err := readSigningKeys(dir)
	if err != nil {
		return nil, err
	}
	var retired []string
	for i := 0; i+1 < len(keys); i++ { // keys are oldest first
		if keys[i+1].CreatedAt.Before(cutoff) {
			name := fmt.Sprintf("%s%d-%s.pem", signingKeyPrefix, keys[i].CreatedAt.Unix(), keys[i].ID)
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return retired, err
			}
			retired = append(retired, keys[i].ID)
		}
	}
	return retired, nil
}

func keyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

func readSigningKeys(dir string) ([]*SigningKey, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("key directory: %w", err)
	}
	var keys []*SigningKey
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, signingKeyPrefix) || !strings.HasSuffix(name, ".pem") {
			continue
		}
		key, err := readSigningKey(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", name, err)
		}
		keys = append(keys, key)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].CreatedAt.Equal(keys[j].CreatedAt) {
			return keys[i].ID < keys[j].ID
		}
		return keys[i].CreatedAt.Before(keys[j].CreatedAt)
	})
	return keys, nil
}

func readSigningKey(path string) (*SigningKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("not PEM")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	priv, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, errors.New("not an Ed25519 key")
	}
	stamp := strings.SplitN(strings.TrimPrefix(filepath.Base(path), signingKeyPrefix), "-", 2)[0]
	unix, err := strconv.ParseInt(stamp, 10, 64)
	if err != nil {
		return nil, errors.New("file name lacks its creation time")
	}
	pub := priv.Public().(ed25519.PublicKey)
	// A key in a directory signs as soon as it is the newest (no activation delay: instances pick
	// it up from the directory, and verify an unknown kid by rereading it).
	return &SigningKey{ID: keyID(pub), CreatedAt: time.Unix(unix, 0).UTC(), Private: priv, Public: pub}, nil
}

// Reload rereads the signing keys from where they are kept.
func (k *KeyRing) Reload() error {
	keys, err := k.load()
	if err != nil {
		return err
	}
	byID := make(map[string]*SigningKey, len(keys))
	for _, key := range keys {
		byID[key.ID] = key
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys, k.byID = keys, byID
	return nil
}

// Current is the key new access tokens are signed with: the newest one already active. A key
// added by a rotation verifies at once on every instance that loaded it, but signs only from its
// activation on, by when every instance has it.
func (k *KeyRing) Current() *SigningKey {
	now := k.now()
	k.mu.RLock()
	defer k.mu.RUnlock()
	for i := len(k.keys) - 1; i >= 0; i-- {
		if !k.keys[i].ActivatesAt.After(now) {
			return k.keys[i]
		}
	}
	if len(k.keys) > 0 {
		return k.keys[0] // none active yet (clocks apart): the oldest, which every instance has
	}
	return nil
}

// Lookup finds a verification key by id.
func (k *KeyRing) Lookup(kid string) (*SigningKey, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	key, ok := k.byID[kid]
	return key, ok
}

// derive returns a key for one purpose, derived from the server secret.
func (k *KeyRing) derive(purpose string) []byte {
	mac := hmac.New(sha256.New, k.secret)
	mac.Write([]byte("gatehouse/" + purpose))
	return mac.Sum(nil)
}

// CSRFKey is the key that signs CSRF tokens.
func (k *KeyRing) CSRFKey() []byte { return k.derive("csrf") }

// JWKS renders the public keys as a JSON Web Key Set.
func (k *KeyRing) JWKS() []byte {
	type jwk struct {
		Kty string `json:"kty"`
		Crv string `json:"crv"`
		X   string `json:"x"`
		Kid string `json:"kid"`
		Use string `json:"use"`
		Alg string `json:"alg"`
	}
	k.mu.RLock()
	keys := make([]jwk, 0, len(k.byID))
	for _, key := range k.byID {
		keys = append(keys, jwk{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(key.Public), Kid: key.ID, Use: "sig", Alg: "EdDSA"})
	}
	k.mu.RUnlock()
	sort.Slice(keys, func(i, j int) bool { return keys[i].Kid < keys[j].Kid })
	out, _ := json.Marshal(map[string]any{"keys": keys})
	return out
}
