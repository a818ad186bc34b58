package models

import (
	"context"
	"time"

	"gorm.io/gorm/clause"
)

// KeysChannel is the PostgreSQL notification channel on which a change of signing keys is told.
const KeysChannel = "gatehouse_keys"

// StoredSigningKey is a signing key as the database holds it: the private key sealed under the
// operator's master key, the public key in the clear (it is published anyway).
type StoredSigningKey struct {
	KID         string `gorm:"column:kid;primaryKey"`
	CreatedAt   time.Time
	ActivatesAt time.Time
	PublicKey   []byte
	Sealed      []byte
}

// TableName is signing_keys.
func (StoredSigningKey) TableName() string { return "signing_keys" }

// AddSigningKey stores a new key; false (and nothing changed) when its kid exists already.
func (s *Store) AddSigningKey(ctx context.Context, k *StoredSigningKey) (bool, error) {
	res := s.with(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(k)
	return res.RowsAffected == 1, translate(res.Error)
}

// SigningKeys lists the stored keys, oldest first.
func (s *Store) SigningKeys(ctx context.Context) ([]StoredSigningKey, error) {
	var keys []StoredSigningKey
	err := s.with(ctx).Order("activates_at, kid").Find(&keys).Error
	return keys, translate(err)
}

// DeleteSigningKeys removes the keys with these ids.
func (s *Store) DeleteSigningKeys(ctx context.Context, kids []string) error {
	if len(kids) == 0 {
		return nil
	}
	return translate(s.with(ctx).Where("kid IN ?", kids).Delete(&StoredSigningKey{}).Error)
}

// ServerSecret returns the sealed server secret, storing sealed first when there is none yet
// (sealed nil: only read, ErrNotFound when there is none): instances starting at once all end up
// with the one that was stored first.
func (s *Store) ServerSecret(ctx context.Context, sealed []byte) ([]byte, error) {
	if sealed != nil {
		err := s.with(ctx).Exec(`INSERT INTO server_secret (id, sealed) VALUES (1, ?) ON CONFLICT (id) DO NOTHING`, sealed).Error
		if err != nil {
			return nil, translate(err)
		}
	}
	var stored []byte
	err := s.with(ctx).Raw(`SELECT sealed FROM server_secret WHERE id = 1`).Row().Scan(&stored)
	return stored, translate(err)
}

// ReplaceServerSecret overwrites the sealed server secret (importing a key directory, rewrapping
// under a new master key).
func (s *Store) ReplaceServerSecret(ctx context.Context, sealed []byte) error {
	return translate(s.with(ctx).Exec(`INSERT INTO server_secret (id, sealed) VALUES (1, ?)
		ON CONFLICT (id) DO UPDATE SET sealed = excluded.sealed`, sealed).Error)
}

// ResealSigningKey replaces a key's sealed private key (rewrapping under a new master key).
func (s *Store) ResealSigningKey(ctx context.Context, kid string, sealed []byte) error {
	return translate(s.with(ctx).Model(&StoredSigningKey{}).Where("kid = ?", kid).Update("sealed", sealed).Error)
}
