package auth

import (
	"crypto/subtle"
	"time"

	"gatehouse/models"
)

// The token rules, each decided here once. Rotation (rotation.go), sign-in (signin.go) and
// verification (access.go) ask these functions; the one-statement rotation on PostgreSQL
// (models.RotateInOneStatement) cannot call Go, so the service hands it the values these
// functions decide on (models.RotateGuard) and each of its SQL clauses names the rule below that
// it enforces. The rotation suite runs through both paths on PostgreSQL to keep them equal.
//
//	rule 1  rotation             rotatable: the presented token is the family's live token
//	rule 2  idempotent retry     inGrace: the token rotated last, within RefreshGrace, successor unused
//	rule 3  reuse detection      any other token of the family (rotation.go replayDetected)
//	rule 4  no forks             the live token is one column, changed under the row lock (models)
//	rule 5  lifetimes            expired, refreshExpiry
//	rule 6  immediate revocation accessRevoked
//	rule 7  disabled users       familyClosed, accessRevoked, and sign-in (signin.go authenticate)
//	binding                      sameDevice: a family is used from its own device only

// familyClosed: the family was signed out, or its user disabled (rule 7): no token of it works,
// and presenting one is not a replay (the family is already gone).
func familyClosed(d *models.DeviceSession, userDisabled bool) bool {
	return d.RevokedAt != nil || userDisabled
}

// rotatable: the presented token is the family's live token (rule 1).
func rotatable(d *models.DeviceSession, p models.RotateParams) bool {
	return subtle.ConstantTimeCompare(d.TokenHash, p.Hash) == 1
}

// inGrace: the presented token is the one rotated last, less than RefreshGrace ago, and its
// successor (the live token) is the one derived from it, so it has not been used since (rule 2).
func (s *Service) inGrace(d *models.DeviceSession, p models.RotateParams) bool {
	return d.RotatedAt != nil && p.Now.Sub(*d.RotatedAt) < s.cfg.RefreshGrace &&
		subtle.ConstantTimeCompare(d.PrevTokenHash, p.Hash) == 1 &&
		subtle.ConstantTimeCompare(d.TokenHash, p.SuccessorHash) == 1
}

// expired: the live token is past its idle lifetime, or the session past its absolute one (rule 5).
func expired(d *models.DeviceSession, now time.Time) bool {
	return !now.Before(d.TokenExpiresAt) || !now.Before(d.ExpiresAt)
}

// refreshExpiry is when a refresh token issued now expires: after the idle lifetime, but never
// after its session's absolute expiry, which rotation does not extend (rule 5).
func (s *Service) refreshExpiry(now, sessionExpires time.Time) time.Time {
	return minTime(now.Add(s.cfg.RefreshIdleTTL), sessionExpires)
}

// sameDevice: a family is bound to its device. A client that names another device (X-Device-Id
// or the device cookie) cannot use the family's live token; one that names none can.
func sameDevice(d *models.DeviceSession, p models.RotateParams) bool {
	return p.DeviceID == "" || p.DeviceID == d.DeviceID
}

// accessRevoked: an access token is rejected at once when its session was signed out or is past
// its lifetime, when its user is disabled, or when it was issued before the user's token_version
// was bumped (rule 6), whatever its exp says.
func accessRevoked(state *models.AccessState, version int64, now time.Time) bool {
	return state.UserDisabled || state.SessionRevoked || !now.Before(state.SessionExpiresAt) ||
		version < state.TokenVersion
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
