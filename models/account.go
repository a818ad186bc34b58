package models

import (
	"context"
)

// DeleteUser deletes an account and returns the ids of its sessions that were still unrevoked.
// Its sessions, refresh tokens, security events, link tokens and known devices go with it by ON
// DELETE CASCADE; ErrNotFound when there is no such user.
func (s *Store) DeleteUser(ctx context.Context, userID string) ([]string, error) {
	var live []string
	err := s.with(ctx).Model(&DeviceSession{}).Where("user_id = ? AND revoked_at IS NULL", userID).Pluck("id", &live).Error
	if err != nil {
		return nil, translate(err)
	}
	res := s.with(ctx).Where("id = ?", userID).Delete(&User{})
	if res.Error == nil && res.RowsAffected == 0 {
		return nil, ErrNotFound
	}
	return live, translate(res.Error)
}

// DeletePendingMailTo drops the unsent messages to an address (the outbox has no foreign key to
// users, so a deleted account's queued mail must be removed by address).
func (s *Store) DeletePendingMailTo(ctx context.Context, recipient string) error {
	return translate(s.with(ctx).Where("recipient = ? AND sent_at IS NULL AND failed_at IS NULL", recipient).
		Delete(&OutboxMessage{}).Error)
}

// UserSessions lists every device session of a user, revoked and expired ones included, newest first.
func (s *Store) UserSessions(ctx context.Context, userID string) ([]DeviceSession, error) {
	var list []DeviceSession
	err := s.read(ctx).Where("user_id = ?", userID).Order("created_at DESC, id").Find(&list).Error
	return list, translate(err)
}

// UserEvents lists every security event of a user, newest first.
func (s *Store) UserEvents(ctx context.Context, userID string) ([]SecurityEvent, error) {
	var events []SecurityEvent
	err := s.read(ctx).Where("user_id = ?", userID).Order("created_at DESC, id DESC").Find(&events).Error
	return events, translate(err)
}
