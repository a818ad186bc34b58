package auth

import (
	"strings"
	"time"

	"gatehouse/models"
)

// Session is a device session as the person and their apps see it: one signed-in browser or app
// on one device, which is one refresh-token family.
type Session struct {
	ID         string
	DeviceName string
	UserAgent  string
	CreatedIP  string
	LastIP     string
	CreatedAt  time.Time
	LastUsedAt time.Time
	ExpiresAt  time.Time
	AMR        []string // how it signed in: "pwd", "otp", "rec", "hwk"
}

func sessionOf(d *models.DeviceSession) Session {
	return Session{ID: d.ID, DeviceName: d.DeviceName, UserAgent: d.UserAgent, CreatedIP: d.CreatedIP,
		LastIP: d.LastIP, CreatedAt: d.CreatedAt, LastUsedAt: d.LastUsedAt, ExpiresAt: d.ExpiresAt, AMR: strings.Fields(d.AMR)}
}

// Event is something that happened to an account that its owner should be able to see.
type Event struct {
	ID         int64 // increases with time: the cursor of activity paging
	Kind       EventKind
	SessionID  string
	DeviceName string
	IP         string
	Detail     string // the factor's name, or for a sign-in how it signed in (amr, space-separated)
	At         time.Time
}

// EventKind names what happened.
type EventKind string

// The kinds of security event.
const (
	EventSignedIn            EventKind = models.EventSignedIn
	EventSignedOut           EventKind = models.EventSignedOut
	EventSignedOutOthers     EventKind = models.EventSignedOutOthers
	EventSignedOutEverywhere EventKind = models.EventSignedOutEverywhere
	EventPasswordChanged     EventKind = models.EventPasswordChanged
	EventTokenReused         EventKind = models.EventTokenReused
	EventUserDisabled        EventKind = models.EventUserDisabled
	EventSignInFailed        EventKind = models.EventSignInFailed
	EventPasswordCheckFailed EventKind = models.EventPasswordCheckFailed
	EventSessionEvicted      EventKind = models.EventSessionEvicted
	EventPasswordReset       EventKind = models.EventPasswordReset
	EventEmailVerified       EventKind = models.EventEmailVerified
	EventEmailChanged        EventKind = models.EventEmailChanged
	EventEmailChangeUndone   EventKind = models.EventEmailChangeUndone
	EventAccountCreated      EventKind = models.EventAccountCreated // the first event of every account
	EventTOTPAdded           EventKind = models.EventTOTPAdded
	EventPasskeyAdded        EventKind = models.EventPasskeyAdded
	EventFactorRemoved       EventKind = models.EventFactorRemoved
	EventRecoveryCodesMade   EventKind = models.EventRecoveryCodesMade
	EventRecoveryCodeUsed    EventKind = models.EventRecoveryCodeUsed
	EventSecondFactorFailed  EventKind = models.EventSecondFactorFailed
	EventFactorsReset        EventKind = models.EventFactorsReset
)

func eventOf(e *models.SecurityEvent) Event {
	return Event{ID: e.ID, Kind: EventKind(e.Kind), SessionID: e.SessionID, DeviceName: e.DeviceName, IP: e.IP, Detail: e.Detail, At: e.CreatedAt}
}

// Account is a user's own view of their account.
type Account struct {
	ID            string
	Email         string
	EmailVerified bool
	DisplayName   string
	SignInNotices bool // email the owner about sign-ins on new devices
	CreatedAt     time.Time
}

func accountOf(u *models.User) *Account {
	return &Account{ID: u.ID, Email: u.Email, EmailVerified: u.EmailVerified(), DisplayName: u.DisplayName,
		SignInNotices: u.NotifySignIns, CreatedAt: u.CreatedAt}
}
