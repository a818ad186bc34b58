// Package auth is Gatehouse's domain: sign-in, refresh-token rotation, device sessions,
// token_version, passwords and signing keys. Every token rule of the contract is decided here,
// each in one function of rules.go (which lists them); rotation.go applies them to a refresh,
// access.go to a bearer check, signin.go to a sign-in, users.go disables accounts.
package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"gatehouse/models"
)

// Config holds the lifetimes and names the service works with.
type Config struct {
	Issuer         string        // iss of access tokens: the portal's base URL
	AccessTTL      time.Duration // access token lifetime
	RefreshIdleTTL time.Duration // a refresh token's idle lifetime
	SessionMaxAge  time.Duration // a device session's absolute lifetime
	RefreshGrace   time.Duration // the idempotent-retry window of token rule 2
	ReauthWindow   time.Duration // how recent a password entry sensitive actions need (0: never ask)
	MaxSessions    int           // live device sessions per user; a sign-in past it signs out the least recently used (0: DefaultMaxSessions)
	ResetTTL       time.Duration // how long a password-reset link works (0: 30 minutes)
	// EmailVerification is off, optional (the default) or required.
	EmailVerification EmailVerification
	// RefreshBatch rotates the refreshes that arrive while others are being rotated together, in
	// one commit: one statement on PostgreSQL, one transaction on SQLite's writer (batch.go).
	RefreshBatch bool
}

// DefaultMaxSessions is the per-user cap on live device sessions when none is configured.
const DefaultMaxSessions = 50

// Service is the auth domain over one store.
type Service struct {
	store     *models.Store
	cfg       Config
	keys      *KeyRing
	successor successorKey
	passwords *Passwords
	now       func() time.Time
	rand      io.Reader
	observer  Observer
	states    AccessStates
	verified  *verifiedTokens
	log       *slog.Logger
	mailer    Mailer // nil: no mail is written
	locate    func(ip string) string
	// relyingParty is the portal as WebAuthn sees it; nil when passkeys are off (the base URL's
	// host is an IP address, which browsers refuse as a relying party).
	relyingParty *webauthn.WebAuthn
	passkeysOff  error // why relyingParty is nil
	// background counts writes done after a request's answer (failed sign-in events).
	background sync.WaitGroup

	// transactionalRefresh makes every refresh take the transactional path, even on PostgreSQL,
	// so that tests run one rotation suite through both paths (export_test.go).
	transactionalRefresh bool
	// batcher gathers refreshes into shared commits; nil when batching is off.
	batcher *refreshBatcher

	reloadMu   sync.Mutex
	lastReload time.Time
}

// Observer is told about outcomes worth counting (metrics) and about revocations worth fanning
// out (caches on other instances). A nil Observer is fine.
type Observer interface {
	RefreshOutcome(result string)
	LoginOutcome(result string)
	Revoked(userID string, sessionIDs []string)
}

// Deps are the service's collaborators. Now and Rand default to the real clock and crypto/rand.
type Deps struct {
	Store     *models.Store
	Keys      *KeyRing
	Passwords *Passwords
	Now       func() time.Time
	Rand      io.Reader
	Observer  Observer
	Log       *slog.Logger // nil: slog.Default()
	// Locate says roughly where an IP address is (GATEHOUSE_GEOIP_DB), for sign-in notices; nil:
	// nowhere.
	Locate func(ip string) string
}

// New builds the service.
func New(cfg Config, d Deps) *Service {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Locate == nil {
		d.Locate = func(string) string { return "" }
	}
	if cfg.ResetTTL <= 0 {
		cfg.ResetTTL = 30 * time.Minute
	}
	if cfg.EmailVerification == "" {
		cfg.EmailVerification = VerificationOptional
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	relyingParty, passkeysOff := newRelyingParty(cfg.Issuer)
	var batcher *refreshBatcher
	if cfg.RefreshBatch {
		batcher = newRefreshBatcher(d.Store)
	}
	return &Service{
		store: d.Store, cfg: cfg, keys: d.Keys, successor: successorKey(d.Keys.derive("refresh-successor")),
		passwords: d.Passwords, now: d.Now, rand: d.Rand, observer: d.Observer, states: d.Store,
		verified: newVerifiedTokens(50000), log: d.Log, relyingParty: relyingParty, passkeysOff: passkeysOff, locate: d.Locate,
		batcher: batcher,
	}
}

// clock returns now in UTC at the database's precision, so that stored and compared times agree.
func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

func (s *Service) newID() (string, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// reloadForKey reloads the key ring for a key id it does not know. Callers queue behind one
// reload and look again once it is done, so that a burst of tokens signed with a new key all find
// it; an id still unknown reloads at most once a second (garbage ids cannot make every request
// read the keys).
func (s *Service) reloadForKey(kid string) (*SigningKey, bool) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if key, ok := s.keys.Lookup(kid); ok { // loaded by the reload this caller waited for
		return key, true
	}
	now := time.Now()
	if now.Sub(s.lastReload) < time.Second {
		return nil, false
	}
	s.lastReload = now
	if err := s.keys.Reload(); err != nil {
		s.log.Warn("reload signing keys failed", "error", err)
		return nil, false
	}
	return s.keys.Lookup(kid)
}

// Wait returns once the writes the service does after answering (failed sign-in events) are done.
func (s *Service) Wait() { s.background.Wait() }

// Ready tells whether the database answers.
func (s *Service) Ready(ctx context.Context) error { return s.store.Ping(ctx) }

// JWKS is the public key set for /.well-known/jwks.json.
func (s *Service) JWKS() []byte { return s.keys.JWKS() }

// Config returns the service's configuration.
func (s *Service) Config() Config { return s.cfg }

func (s *Service) refreshOutcome(result string) {
	if s.observer != nil {
		s.observer.RefreshOutcome(result)
	}
}

func (s *Service) loginOutcome(result string) {
	if s.observer != nil {
		s.observer.LoginOutcome(result)
	}
}

func (s *Service) revoked(userID string, sessionIDs ...string) {
	if s.observer != nil {
		s.observer.Revoked(userID, sessionIDs)
	}
}
