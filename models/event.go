package models

import (
	"context"
	"time"
)

// Kinds of security event, shown to the user under "Recent security activity".
const (
	EventSignedIn            = "signed_in"
	EventSignedOut           = "signed_out"
	EventSignedOutOthers     = "signed_out_others"
	EventSignedOutEverywhere = "signed_out_everywhere"
	EventPasswordChanged     = "password_changed"
	EventTokenReused         = "token_reused"
	EventDeviceRenamed       = "device_renamed"
	EventUserDisabled        = "user_disabled"
	EventSignInFailed        = "sign_in_failed"        // a wrong password for this account at sign-in
	EventPasswordCheckFailed = "password_check_failed" // a wrong current password while signed in
	EventSessionEvicted      = "session_evicted"       // signed out to make room under the per-user cap
	EventPasswordReset       = "password_reset"        // a new password set with an emailed link
	EventEmailVerified       = "email_verified"
	EventEmailChanged        = "email_changed"
	EventEmailChangeUndone   = "email_change_undone" // from the old address's link: everyone signed out
	EventAccountCreated      = "account_created"
	EventTOTPAdded           = "totp_added"            // an authenticator app was added (Detail: its name)
	EventPasskeyAdded        = "passkey_added"         // a passkey was added (Detail: its name)
	EventFactorRemoved       = "second_factor_removed" // a factor was removed (Detail: its name)
	EventRecoveryCodesMade   = "recovery_codes_generated"
	EventRecoveryCodeUsed    = "recovery_code_used"
	EventSecondFactorFailed  = "second_factor_failed" // a wrong code at the second step or re-authentication
	EventFactorsReset        = "second_factors_reset" // an operator removed every factor (gatehouse user mfa reset)
)

// EventsKeptPerUser bounds each user's security history: Prune drops a user's events beyond the
// newest EventsKeptPerUser, so no one account can grow the table without bound. (It is done there,
// not as each event is recorded: deleting old rows inside the transactions that record events
// locks them in an order that deadlocks with other such transactions.)
const EventsKeptPerUser = 500

// SecurityEvent records something a user should be able to see happened to their account.
type SecurityEvent struct {
	ID         int64 `gorm:"primaryKey"`
	UserID     string
	SessionID  string
	DeviceName string
	Kind       string
	IP         string
	Detail     string // the factor's name, or how a sign-in signed in (its amr)
	CreatedAt  time.Time
}

// RecordEvent appends a security event.
func (s *Store) RecordEvent(ctx context.Context, e *SecurityEvent) error {
	return translate(s.with(ctx).Create(e).Error)
}

// RecentEvents lists a user's newest events first.
func (s *Store) RecentEvents(ctx context.Context, userID string, limit int) ([]SecurityEvent, error) {
	return s.queryEvents(ctx, `SELECT `+eventColumns+` FROM security_events WHERE user_id = ?
		ORDER BY created_at DESC, id DESC LIMIT ?`, userID, limit)
}

// EventsOfKind lists a user's events of one kind, oldest first (tests and audits).
func (s *Store) EventsOfKind(ctx context.Context, userID, kind string) ([]SecurityEvent, error) {
	var events []SecurityEvent
	err := s.read(ctx).Where("user_id = ? AND kind = ?", userID, kind).Order("id").Find(&events).Error
	return events, translate(err)
}

// EventsBefore lists a user's events with an id below before (0: from the newest), newest first:
// one page of the full history, which keyset paging keeps stable while new events arrive.
func (s *Store) EventsBefore(ctx context.Context, userID string, before int64, limit int) ([]SecurityEvent, error) {
	q := s.read(ctx).Where("user_id = ?", userID)
	if before > 0 {
		q = q.Where("id < ?", before)
	}
	var events []SecurityEvent
	err := q.Order("id DESC").Limit(limit).Find(&events).Error
	return events, translate(err)
}

// SessionEvents lists the events of one of a user's sessions, newest first.
func (s *Store) SessionEvents(ctx context.Context, userID, sessionID string, limit int) ([]SecurityEvent, error) {
	var events []SecurityEvent
	err := s.read(ctx).Where("user_id = ? AND session_id = ?", userID, sessionID).Order("id DESC").Limit(limit).Find(&events).Error
	return events, translate(err)
}
