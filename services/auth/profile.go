package auth

import (
	"context"
	"errors"
	"fmt"

	"gatehouse/models"
)

// SetDisplayName changes the name the account goes by (empty: none), under the rules of
// validateDisplayName. It is no security event, since the name decides nothing about access; but
// /api/me answers it from the revocation cache, so caches hear of it: on PostgreSQL the users
// trigger tells every instance, and this instance's own cache is told here at once.
func (s *Service) SetDisplayName(ctx context.Context, userID, raw string) error {
	name, err := validateDisplayName(raw)
	if err != nil {
		return err
	}
	err = s.store.SetDisplayName(ctx, userID, name, s.clock())
	if errors.Is(err, models.ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("set display name: %w", err)
	}
	s.revoked(userID)
	return nil
}
