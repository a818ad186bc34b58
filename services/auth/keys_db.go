package auth

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"gatehouse/models"
)

// KeyActivationDelay is how long a key added by a rotation is published before it signs: every
// instance loads it at once on the database's notification, and within 30 seconds from its
// periodic reload if a notification was missed, so no instance meets a token it cannot verify.
const KeyActivationDelay = time.Minute

const serverSecretAAD = "gatehouse/server-secret"

func signingKeyAAD(kid string) string { return "gatehouse/signing-key/" + kid }

// OpenDatabaseKeyRing loads the signing keys and the server secret from PostgreSQL, opening them
// with the master keys; on a first start it creates the secret and a first key there.
func OpenDatabaseKeyRing(ctx context.Context, store *models.Store, master *MasterKeys, rand io.Reader, now time.Time) (*KeyRing, error) {
	fresh := make([]byte, 32)
	if _, err := io.ReadFull(rand, fresh); err != nil {
		return nil, err
	}
	sealed, err := master.seal(fresh, serverSecretAAD, rand)
	if err != nil {
		return nil, err
	}
	stored, err := store.ServerSecret(ctx, sealed)
	if err != nil {
		return nil, fmt.Errorf("server secret: %w", err)
	}
	secret, err := master.open(stored, serverSecretAAD)
	if err != nil {
		return nil, err
	}
	if len(secret) != 32 {
		return nil, errors.New("the stored server secret is not 32 bytes")
	}
	k := &KeyRing{secret: secret, load: func() ([]*SigningKey, error) { return databaseSigningKeys(store, master) }, now: time.Now}
	if err := k.Reload(); err != nil {
		return nil, err
	}
	if k.Current() == nil {
		if _, err := AddDatabaseSigningKey(ctx, store, master, rand, now, now); err != nil {
			return nil, err
		}
		if err := k.Reload(); err != nil {
			return nil, err
		}
	}
	return k, nil
}

func databaseSigningKeys(store *models.Store, master *MasterKeys) ([]*SigningKey, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := store.SigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("read signing keys: %w", err)
	}
	keys := make([]*SigningKey, 0, len(rows))
	for _, row := range rows {
		seed, err := master.open(row.Sealed, signingKeyAAD(row.KID))
		if err != nil {
			return nil, err
		}
		if len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("signing key %s: not an Ed25519 seed", row.KID)
		}
		priv := ed25519.NewKeyFromSeed(seed)
		pub := priv.Public().(ed25519.PublicKey)
		if keyID(pub) != row.KID || !bytes.Equal(pub, row.PublicKey) {
			return nil, fmt.Errorf("signing key %s: its private and public halves do not match", row.KID)
		}
		keys = append(keys, &SigningKey{ID: row.KID, CreatedAt: row.CreatedAt.UTC(), ActivatesAt: row.ActivatesAt.UTC(), Private: priv, Public: pub})
	}
	return keys, nil
}

// AddDatabaseSigningKey stores a new signing key, sealed, that signs from activatesAt on; the
// database tells every instance (NOTIFY gatehouse_keys). It returns the key id.
func AddDatabaseSigningKey(ctx context.Context, store *models.Store, master *MasterKeys, rand io.Reader, now, activatesAt time.Time) (string, error) {
	pub, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return "", err
	}
	return storeSigningKey(ctx, store, master, rand, &SigningKey{ID: keyID(pub), CreatedAt: now, ActivatesAt: activatesAt, Private: priv, Public: pub})
}

func storeSigningKey(ctx context.Context, store *models.Store, master *MasterKeys, rand io.Reader, key *SigningKey) (string, error) {
	sealed, err := master.seal(key.Private.Seed(), signingKeyAAD(key.ID), rand)
	if err != nil {
		return "", err
	}
	row := &models.StoredSigningKey{KID: key.ID, CreatedAt: key.CreatedAt.UTC(), ActivatesAt: key.ActivatesAt.UTC(), PublicKey: key.Public, Sealed: sealed}
	added, err := store.AddSigningKey(ctx, row)
	if err != nil {
		return "", fmt.Errorf("store signing key: %w", err)
	}
	if !added {
		return key.ID, errKeyExists
	}
	return key.ID, nil
}

// errKeyExists: the key is in the database already (an import run twice).
var errKeyExists = errors.New("signing key exists")

// RetireDatabaseSigningKeys deletes every key whose successor became active before cutoff: by
// then every access token it signed has expired. The newest active key always stays.
func RetireDatabaseSigningKeys(ctx context.Context, store *models.Store, cutoff time.Time) ([]string, error) {
	rows, err := store.SigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	var retired []string
	for i := 0; i+1 < len(rows); i++ { // oldest activation first
		if rows[i+1].ActivatesAt.Before(cutoff) {
			retired = append(retired, rows[i].KID)
		}
	}
	return retired, store.DeleteSigningKeys(ctx, retired)
}

// ImportKeyDirectory moves a key directory into the database: its server secret (so that refresh
// tokens and CSRF tokens issued before keep working) and every signing key, active as they were.
// It returns how many keys it stored; keys already there are skipped.
func ImportKeyDirectory(ctx context.Context, store *models.Store, master *MasterKeys, rand io.Reader, dir string) (int, error) {
	secret, err := os.ReadFile(filepath.Join(dir, secretFile))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", filepath.Join(dir, secretFile), err)
	}
	if len(secret) != 32 {
		return 0, fmt.Errorf("%s must hold 32 bytes", filepath.Join(dir, secretFile))
	}
	keys, err := readSigningKeys(dir)
	if err != nil {
		return 0, err
	}
	if len(keys) == 0 {
		return 0, fmt.Errorf("%s holds no signing key", dir)
	}
	sealed, err := master.seal(secret, serverSecretAAD, rand)
	if err != nil {
		return 0, err
	}
	imported := 0
	err = store.InTx(ctx, func(tx *models.Store) error {
		if err := tx.ReplaceServerSecret(ctx, sealed); err != nil {
			return fmt.Errorf("store server secret: %w", err)
		}
		for _, key := range keys {
			if _, err := storeSigningKey(ctx, tx, master, rand, key); errors.Is(err, errKeyExists) {
				continue
			} else if err != nil {
				return err
			}
			imported++
		}
		return nil
	})
	return imported, err
}

// RewrapKeys seals every stored key and the server secret under the first master key, so that
// older master keys can be dropped from GATEHOUSE_MASTER_KEY. It returns how many values it
// resealed.
func RewrapKeys(ctx context.Context, store *models.Store, master *MasterKeys, rand io.Reader) (int, error) {
	n := 0
	err := store.InTx(ctx, func(tx *models.Store) error {
		stored, err := tx.ServerSecret(ctx, nil)
		if err != nil && !errors.Is(err, models.ErrNotFound) {
			return err
		}
		if len(stored) > 0 && !master.sealedUnderFirst(stored) {
			secret, err := master.open(stored, serverSecretAAD)
			if err != nil {
				return err
			}
			sealed, err := master.seal(secret, serverSecretAAD, rand)
			if err != nil {
				return err
			}
			if err := tx.ReplaceServerSecret(ctx, sealed); err != nil {
				return err
			}
			n++
		}
		rows, err := tx.SigningKeys(ctx)
		if err != nil {
			return err
		}
		for _, row := range rows {
			if master.sealedUnderFirst(row.Sealed) {
				continue
			}
			seed, err := master.open(row.Sealed, signingKeyAAD(row.KID))
			if err != nil {
				return err
			}
			sealed, err := master.seal(seed, signingKeyAAD(row.KID), rand)
			if err != nil {
				return err
			}
			if err := tx.ResealSigningKey(ctx, row.KID, sealed); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
