package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gatehouse/models"
)

// Client describes the device a request comes from.
type Client struct {
	DeviceID string // stable per device: the device cookie or X-Device-Id
	// Replaces is the device id whose live session this sign-in replaces, when it differs from
	// DeviceID: a browser gets a new device cookie at each sign-in, so a planted one is worthless.
	Replaces   string
	DeviceName string // optional name the app or user gives the device
	UserAgent  string
	IP         string
}

// Issued is what a sign-in or refresh hands the client.
type Issued struct {
	UserID           string
	SessionID        string
	AccessToken      string
	AccessExpiresAt  time.Time
	RefreshToken     string
	RefreshExpiresAt time.Time
}

// SignIn checks email and password and starts a session on the client's device, replacing any
// earlier session of that device. Every failure is ErrInvalidCredentials, after the same work.
func (s *Service) SignIn(ctx context.Context, email, password string, c Client) (*Issued, error) {
	user, err := s.authenticate(ctx, email, password, c.IP)
	if err != nil {
		s.loginOutcome(outcomeOf(err))
		return nil, err
	}
	if s.cfg.EmailVerification == VerificationRequired && !user.EmailVerified() {
		s.loginOutcome("email_not_verified")
		if err := s.SendVerification(ctx, user.ID); err != nil {
			return nil, err
		}
		return nil, ErrEmailNotVerified
	}
	second, err := s.needsSecondStep(ctx, s.store, user.ID)
	if err != nil {
		return nil, err
	}
	if second {
		s.loginOutcome("second_factor_required")
		return nil, s.secondStep(ctx, s.store, user.ID, user.TokenVersion, c)
	}
	issued, err := s.startSession(ctx, user, c, AMRPassword)
	if err != nil {
		return nil, err
	}
	s.loginOutcome("ok")
	return issued, nil
}

func outcomeOf(err error) string {
	switch {
	case errors.Is(err, ErrInvalidCredentials):
		return "invalid_credentials"
	case errors.Is(err, ErrBusy):
		return "busy"
	default:
		return "error"
	}
}

func (s *Service) authenticate(ctx context.Context, rawEmail, password, ip string) (*models.User, error) {
	email, emailErr := NormalizeEmail(rawEmail)
	var user *models.User
	hash := "" // unknown email: Check compares against the dummy hash, taking the same time
	if emailErr == nil {
		u, err := s.store.UserByEmail(ctx, email)
		switch {
		case err == nil:
			user, hash = u, u.PasswordHash
		case !errors.Is(err, models.ErrNotFound):
			return nil, err
		}
	}
	ok, err := s.passwords.Check(ctx, hash, password)
	if err != nil {
		return nil, err
	}
	if !ok && user != nil {
		s.recordFailedSignIn(ctx, user.ID, ip)
	}
	if !ok || user == nil || user.Disabled() {
		return nil, ErrInvalidCredentials
	}
	return user, nil
}

// recordFailedSignIn records a wrong password for an existing account. It is written after the
// answer, off the request's path, so that a known email takes no longer to refuse than an
// unknown one (no enumeration by timing).
func (s *Service) recordFailedSignIn(ctx context.Context, userID, ip string) {
	now := s.clock()
	ctx = context.WithoutCancel(ctx)
	s.background.Add(1)
	go func() {
		defer s.background.Done()
		err := s.store.RecordEvent(ctx, &models.SecurityEvent{UserID: userID, Kind: models.EventSignInFailed, IP: ip, CreatedAt: now})
		if err != nil && s.log != nil {
			s.log.Warn("could not record a failed sign-in", "error", err)
		}
	}()
}

// SignUp creates an account and signs it in on the client's device.
func (s *Service) SignUp(ctx context.Context, email, password, displayName string, c Client) (*Issued, error) {
	user, err := s.CreateUser(ctx, email, displayName, password)
	if err != nil {
		return nil, err
	}
	if err := s.SendVerification(ctx, user.ID); err != nil {
		return nil, err
	}
	if s.cfg.EmailVerification == VerificationRequired {
		return nil, ErrEmailNotVerified // signs in once the address is verified
	}
	return s.startSession(ctx, user, c, AMRPassword)
}

// startSession creates a device session and its first refresh token in one transaction,
// replacing the device's earlier session so that the devices list shows each device once.
func (s *Service) startSession(ctx context.Context, user *models.User, c Client, amr string) (*Issued, error) {
	var (
		started  *newSession
		ended    []string
		version  int64
		verified bool
	)
	err := s.store.InTx(ctx, func(tx *models.Store) error {
		// Sign-ins of one user queue here, so two at once on one device cannot both find no
		// live session and then collide on the one-live-session-per-device index.
		locked, err := tx.LockUser(ctx, user.ID)
		if err != nil {
			return fmt.Errorf("lock user: %w", err)
		}
		// The password was checked against the row read before the lock: a password change or
		// a disable that committed since then wins, and this sign-in fails as a wrong one would.
		if locked.PasswordHash != user.PasswordHash || locked.Disabled() {
			return ErrInvalidCredentials
		}
		version, verified = locked.TokenVersion, locked.EmailVerified()
		started, ended, err = s.startSessionInTx(ctx, tx, locked, c, amr)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.revoked(user.ID, ended...)
	s.mailSent()
	return s.issueStarted(user.ID, version, verified, started)
}

// newSession is a device session created in a transaction, with the refresh token it starts with.
type newSession struct {
	row   *models.DeviceSession
	token string
}

// startSessionInTx creates a device session inside tx, which holds the user's row lock: it ends
// the live session of the device it replaces, and the least recently used ones past the per-user
// cap. It returns the new session and the ids of the sessions it ended.
func (s *Service) startSessionInTx(ctx context.Context, tx *models.Store, user *models.User, c Client, amr string) (*newSession, []string, error) {
	userID := user.ID
	now := s.clock()
	token, err := newRefreshToken(s.rand)
	if err != nil {
		return nil, nil, err
	}
	id, err := s.newID()
	if err != nil {
		return nil, nil, err
	}
	if c.DeviceID == "" {
		if c.DeviceID, err = s.newID(); err != nil {
			return nil, nil, err
		}
	}
	if c.Replaces == "" {
		c.Replaces = c.DeviceID
	}
	userAgent := cleanText(c.UserAgent, 512)
	// A name the person gave this device stays, whatever an app or the browser says now.
	given, err := tx.NamedOnDevice(ctx, userID, c.Replaces)
	if err != nil {
		return nil, nil, fmt.Errorf("find the device's name: %w", err)
	}
	name := given
	if name == "" {
		name = c.DeviceName
	}
	if name == "" {
		name = DefaultDeviceName(userAgent)
	}
	expires := now.Add(s.cfg.SessionMaxAge)
	row := &models.DeviceSession{
		ID: id, UserID: userID, DeviceID: c.DeviceID, DeviceName: name, UserNamed: given != "", UserAgent: userAgent,
		CreatedIP: c.IP, LastIP: c.IP, CreatedAt: now, LastUsedAt: now, ExpiresAt: expires, AuthenticatedAt: now,
		TokenHash: hashToken(token), TokenExpiresAt: s.refreshExpiry(now, expires), AMR: amr,
	}
	var ended []string
	for _, device := range []string{c.Replaces, c.DeviceID} {
		old, err := tx.LiveSessionOnDevice(ctx, userID, device)
		if errors.Is(err, models.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("find the device's session: %w", err)
		}
		if _, err := tx.RevokeSession(ctx, old.ID, "replaced", now); err != nil {
			return nil, nil, fmt.Errorf("replace session %s: %w", old.ID, err)
		}
		ended = append(ended, old.ID)
	}
	evicted, err := s.evictPastCap(ctx, tx, userID, now)
	if err != nil {
		return nil, nil, err
	}
	ended = append(ended, evicted...)
	if err := tx.CreateSession(ctx, row); err != nil {
		return nil, nil, fmt.Errorf("create session: %w", err)
	}
	if err := tx.RecordEvent(ctx, &models.SecurityEvent{UserID: userID, SessionID: id, DeviceName: name, Kind: models.EventSignedIn, IP: c.IP, Detail: amr, CreatedAt: now}); err != nil {
		return nil, nil, fmt.Errorf("record sign-in: %w", err)
	}
	if err := s.noticeNewDevice(ctx, tx, user, c, row); err != nil {
		return nil, nil, err
	}
	return &newSession{row: row, token: token}, ended, nil
}

// evictPastCap signs out the user's least recently used sessions so that, with the one about to
// start, at most MaxSessions are live: a new sign-in always works, and the oldest device goes.
func (s *Service) evictPastCap(ctx context.Context, tx *models.Store, userID string, now time.Time) ([]string, error) {
	live, err := tx.CountUserLiveSessions(ctx, userID, now)
	if err != nil {
		return nil, fmt.Errorf("count sessions: %w", err)
	}
	over := int(live) - s.cfg.MaxSessions + 1
	if over <= 0 {
		return nil, nil
	}
	oldest, err := tx.LeastRecentlyUsedSessions(ctx, userID, now, over)
	if err != nil {
		return nil, fmt.Errorf("list sessions past the cap: %w", err)
	}
	var ids []string
	for _, d := range oldest {
		if _, err := tx.RevokeSession(ctx, d.ID, models.EventSessionEvicted, now); err != nil {
			return nil, fmt.Errorf("evict session %s: %w", d.ID, err)
		}
		if err := tx.RecordEvent(ctx, &models.SecurityEvent{UserID: userID, SessionID: d.ID, DeviceName: d.DeviceName, Kind: models.EventSessionEvicted, CreatedAt: now}); err != nil {
			return nil, fmt.Errorf("record eviction: %w", err)
		}
		ids = append(ids, d.ID)
	}
	return ids, nil
}

// issueStarted signs the first access token of a session started in a committed transaction.
func (s *Service) issueStarted(userID string, version int64, verified bool, n *newSession) (*Issued, error) {
	access, accessExpires, err := s.signAccess(userID, n.row.ID, version, verified, n.row.AMR, n.row.CreatedAt)
	if err != nil {
		return nil, err
	}
	return &Issued{UserID: userID, SessionID: n.row.ID, AccessToken: access, AccessExpiresAt: accessExpires,
		RefreshToken: n.token, RefreshExpiresAt: n.row.TokenExpiresAt}, nil
}

// KnownDeviceOf tells whether the account with this address has signed in on the device before;
// an unknown address is simply not known (no error).
func (s *Service) KnownDeviceOf(ctx context.Context, rawEmail, deviceID string) (bool, error) {
	email, err := NormalizeEmail(rawEmail)
	if err != nil {
		return false, nil
	}
	user, err := s.store.UserByEmail(ctx, email)
	if err != nil && !errors.Is(err, models.ErrNotFound) {
		return false, fmt.Errorf("find user: %w", err)
	}
	// An unknown address asks about the device too (for no one), so that the two queries of a
	// known one do not tell the addresses apart by timing.
	userID := ""
	if err == nil {
		userID = user.ID
	}
	known, err := s.store.KnownDevice(ctx, userID, deviceID)
	if err != nil {
		return false, fmt.Errorf("known device: %w", err)
	}
	return known && userID != "", nil
}
