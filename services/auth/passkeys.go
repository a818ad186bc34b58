package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"gatehouse/models"
)

// Passkeys (WebAuthn): adding one, signing in with one alone (a discoverable credential), using
// one as the second step after a password, and confirming a sensitive action with one.
//
// Every ceremony is a challenge row (models.AuthChallenge) that keeps the WebAuthn session data
// the browser's answer is verified against: it lives ChallengeTTL and is used up by the answer
// that verifies, in the transaction that acts on it, so one answer acts once. An answer that does
// not verify (wrong origin, RP ID or challenge, a signature counter that did not move forward,
// another user's credential, or garbage) is ErrPasskeyRefused and changes nothing it guards: no
// session, no passkey, no counter.

// passkeyDefaultName names a passkey added without a name.
const passkeyDefaultName = "Passkey"

// relyingPartyName is how browsers and authenticators show the portal in their passkey prompts.
const relyingPartyName = "Gatehouse"

// PasskeyCeremony is a WebAuthn ceremony begun on the server: Options is the publicKey member of
// the browser's navigator.credentials call (JSON), ID is the ceremony the answer names ("" at
// the second step of a sign-in, which keeps its ceremony on the sign-in's own challenge).
type PasskeyCeremony struct {
	ID        string
	Options   json.RawMessage
	ExpiresAt time.Time
}

// newRelyingParty is the portal as WebAuthn sees it: the RP ID is the base URL's host name and
// the only origin accepted is the base URL's scheme, host and port. Browsers refuse passkeys on
// an IP address, so a base URL on one (the default, http://127.0.0.1:8080) turns passkeys off.
func newRelyingParty(issuer string) (*webauthn.WebAuthn, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Hostname() == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("the base URL %q is not an http or https URL", issuer)
	}
	host := strings.ToLower(u.Hostname())
	if net.ParseIP(host) != nil {
		return nil, fmt.Errorf("the base URL's host %s is an IP address; browsers offer passkeys only on a domain name (such as localhost)", host)
	}
	origin := u.Scheme + "://" + host
	if port := u.Port(); port != "" && !(u.Scheme == "http" && port == "80") && !(u.Scheme == "https" && port == "443") {
		origin += ":" + port
	}
	timeout := webauthn.TimeoutConfig{Timeout: ChallengeTTL, TimeoutUVD: ChallengeTTL}
	return webauthn.New(&webauthn.Config{
		RPID: host, RPDisplayName: relyingPartyName, RPOrigins: []string{origin},
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementRequired, RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification: protocol.VerificationPreferred,
		},
		Timeouts: webauthn.TimeoutsConfig{Login: timeout, Registration: timeout},
	})
}

// PasskeysEnabled tells whether passkeys work with this base URL (a host name, not an IP address).
func (s *Service) PasskeysEnabled() bool { return s.relyingParty != nil }

// PasskeysOff says why passkeys are off (nil when they are on); serve logs it at start.
func (s *Service) PasskeysOff() error { return s.passkeysOff }

// passkeyUser is a user with their passkeys, as the WebAuthn library asks for one. The user
// handle is the user's id, so that a discoverable credential names its account.
type passkeyUser struct {
	user        *models.User
	factors     []models.Factor
	credentials []webauthn.Credential
}

func (u *passkeyUser) WebAuthnID() []byte   { return []byte(u.user.ID) }
func (u *passkeyUser) WebAuthnName() string { return u.user.Email }
func (u *passkeyUser) WebAuthnDisplayName() string {
	if u.user.DisplayName != "" {
		return u.user.DisplayName
	}
	return u.user.Email
}
func (u *passkeyUser) WebAuthnCredentials() []webauthn.Credential { return u.credentials }

// factorOf is the passkey whose credential id is id, or nil.
func (u *passkeyUser) factorOf(id []byte) *models.Factor {
	for i := range u.factors {
		if bytes.Equal(u.factors[i].CredentialID, id) {
			return &u.factors[i]
		}
	}
	return nil
}

// loadPasskeyUser reads a user's passkeys.
func loadPasskeyUser(ctx context.Context, st *models.Store, user *models.User) (*passkeyUser, error) {
	factors, err := st.Passkeys(ctx, user.ID)
	if err != nil {
		return nil, fmt.Errorf("list passkeys: %w", err)
	}
	pu := &passkeyUser{user: user, factors: factors}
	for _, f := range factors {
		var cred webauthn.Credential
		if err := json.Unmarshal([]byte(f.Credential), &cred); err != nil {
			return nil, fmt.Errorf("passkey %s: read credential: %w", f.ID, err)
		}
		pu.credentials = append(pu.credentials, cred)
	}
	return pu, nil
}

// refused is ErrPasskeyRefused, with why for the log.
func refused(why error) error { return fmt.Errorf("%w: %v", ErrPasskeyRefused, why) }

// openSessionCeremony locks the signed-in user and finds an open ceremony of a purpose that this
// session began (adding a passkey, confirming with one); one of another session is refused.
func (s *Service) openSessionCeremony(ctx context.Context, tx *models.Store, p *Principal, ceremony, purpose string) (*models.User, *models.AuthChallenge, *webauthn.SessionData, error) {
	user, err := tx.LockUser(ctx, p.UserID)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("lock user: %w", err)
	}
	ch, session, err := s.openCeremony(ctx, tx, ceremony, purpose)
	if err != nil {
		return nil, nil, nil, err
	}
	if ch.UserID == nil || *ch.UserID != p.UserID || ch.SessionID != p.SessionID {
		return nil, nil, nil, refused(errors.New("ceremony of another session"))
	}
	return user, ch, session, nil
}

// openCeremony finds an open ceremony of a purpose and its WebAuthn session data; a ceremony that
// is malformed, unknown, used, expired or of another purpose is refused.
func (s *Service) openCeremony(ctx context.Context, st *models.Store, ceremony, purpose string) (*models.AuthChallenge, *webauthn.SessionData, error) {
	if !wellFormedChallenge(ceremony) {
		return nil, nil, refused(errors.New("malformed ceremony"))
	}
	ch, err := st.OpenChallenge(ctx, hashToken(ceremony), purpose, MaxChallengeAttempts, s.clock())
	if errors.Is(err, models.ErrNotFound) {
		return nil, nil, refused(errors.New("no open ceremony"))
	}
	if err != nil {
		return nil, nil, fmt.Errorf("find ceremony: %w", err)
	}
	session, err := sessionDataOf(ch)
	if err != nil {
		return nil, nil, err
	}
	return ch, session, nil
}

func sessionDataOf(ch *models.AuthChallenge) (*webauthn.SessionData, error) {
	if ch.WebAuthn == "" {
		return nil, refused(errors.New("no ceremony was begun"))
	}
	var session webauthn.SessionData
	if err := json.Unmarshal([]byte(ch.WebAuthn), &session); err != nil {
		return nil, fmt.Errorf("read ceremony: %w", err)
	}
	return &session, nil
}

// beginCeremony stores a new ceremony of a purpose with its session data and returns its id.
func (s *Service) beginCeremony(ctx context.Context, purpose string, userID *string, sessionID string, session *webauthn.SessionData, options any) (*PasskeyCeremony, error) {
	token, err := newChallengeToken(s.rand)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(session)
	if err != nil {
		return nil, err
	}
	opts, err := json.Marshal(options)
	if err != nil {
		return nil, err
	}
	now := s.clock()
	ch := &models.AuthChallenge{IDHash: hashToken(token), Purpose: purpose, UserID: userID, SessionID: sessionID,
		WebAuthn: string(data), CreatedAt: now, ExpiresAt: now.Add(ChallengeTTL)}
	if err := s.store.CreateChallenge(ctx, ch); err != nil {
		return nil, fmt.Errorf("store ceremony: %w", err)
	}
	return &PasskeyCeremony{ID: token, Options: opts, ExpiresAt: ch.ExpiresAt}, nil
}

// useCeremony uses up a ceremony inside the transaction that acts on it.
func (s *Service) useCeremony(ctx context.Context, tx *models.Store, ch *models.AuthChallenge) error {
	err := tx.UseChallenge(ctx, ch.IDHash, MaxChallengeAttempts, s.clock())
	if errors.Is(err, models.ErrNotFound) {
		return refused(errors.New("ceremony used meanwhile"))
	}
	if err != nil {
		return fmt.Errorf("use ceremony: %w", err)
	}
	return nil
}

// passkeyUsed stores a passkey's credential as an assertion updated it (signature counter,
// flags). A counter that did not move forward means the authenticator may have been cloned: the
// answer is refused and nothing is stored.
func (s *Service) passkeyUsed(ctx context.Context, tx *models.Store, pu *passkeyUser, cred *webauthn.Credential) error {
	if cred.Authenticator.CloneWarning {
		return refused(errors.New("signature counter did not increase"))
	}
	f := pu.factorOf(cred.ID)
	if f == nil {
		return refused(errors.New("credential is not the user's"))
	}
	data, err := json.Marshal(cred)
	if err != nil {
		return err
	}
	if err := tx.UsePasskey(ctx, f.ID, string(data), s.clock()); err != nil {
		return fmt.Errorf("record passkey use: %w", err)
	}
	return nil
}

// BeginPasskeyRegistration starts adding a passkey to the signed-in user's account, on this
// session: the options exclude the passkeys the account has already, and ask for a discoverable
// credential (so that it can sign in alone) with user verification where the authenticator can.
// It needs a recent authentication (RequireSecurityReauth); name is checked now so that the
// person hears of a bad name before their authenticator makes the passkey.
func (s *Service) BeginPasskeyRegistration(ctx context.Context, p *Principal, name string) (*PasskeyCeremony, error) {
	if s.relyingParty == nil {
		return nil, ErrNotFound
	}
	if err := s.RequireSecurityReauth(p); err != nil {
		return nil, err
	}
	if _, err := factorName(name, passkeyDefaultName); err != nil {
		return nil, err
	}
	user, err := s.store.UserByID(ctx, p.UserID)
	if err != nil {
		return nil, fmt.Errorf("read user: %w", err)
	}
	pu, err := loadPasskeyUser(ctx, s.store, user)
	if err != nil {
		return nil, err
	}
	creation, session, err := s.relyingParty.BeginRegistration(pu,
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired),
		webauthn.WithExclusions(webauthn.Credentials(pu.credentials).CredentialDescriptors()))
	if err != nil {
		return nil, fmt.Errorf("begin passkey registration: %w", err)
	}
	return s.beginCeremony(ctx, models.ChallengePasskeyRegister, &p.UserID, p.SessionID, session, creation.Response)
}

// FinishPasskeyRegistration adds the passkey a browser made for ceremony (begun on this session by
// BeginPasskeyRegistration), named name. When it is the account's first factor it returns a new
// set of recovery codes, to be shown once. An answer that does not verify is ErrPasskeyRefused; a
// passkey registered already is a ValidationError on "passkey" that wraps it.
func (s *Service) FinishPasskeyRegistration(ctx context.Context, p *Principal, ceremony, name string, response []byte, ip string) ([]string, error) {
	if s.relyingParty == nil {
		return nil, refused(errors.New("passkeys are off"))
	}
	if err := s.RequireSecurityReauth(p); err != nil {
		return nil, err
	}
	name, err := factorName(name, passkeyDefaultName)
	if err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return nil, refused(err)
	}
	var codes []string
	err = s.store.InTx(ctx, func(tx *models.Store) error {
		user, ch, session, err := s.openSessionCeremony(ctx, tx, p, ceremony, models.ChallengePasskeyRegister)
		if err != nil {
			return err
		}
		cred, err := s.relyingParty.CreateCredential(&passkeyUser{user: user}, *session, parsed)
		if err != nil {
			return refused(err)
		}
		data, err := json.Marshal(cred)
		if err != nil {
			return err
		}
		if err := s.useCeremony(ctx, tx, ch); err != nil {
			return err
		}
		id, err := s.newID()
		if err != nil {
			return err
		}
		now := s.clock()
		f := &models.Factor{ID: id, UserID: p.UserID, Kind: models.FactorPasskey, Name: name, CredentialID: cred.ID,
			Credential: string(data), CreatedAt: now, ConfirmedAt: &now}
		if err := tx.CreateFactor(ctx, f); errors.Is(err, models.ErrConflict) {
			return &ValidationError{Field: "passkey", Message: "That passkey is registered already.", Cause: ErrPasskeyRefused}
		} else if err != nil {
			return fmt.Errorf("store passkey: %w", err)
		}
		codes, err = s.factorAdded(ctx, tx, p, models.EventPasskeyAdded, name, ip)
		return err
	})
	return codes, err
}

// BeginPasskeyLogin starts a sign-in with a passkey alone: the options name no account, so the
// browser offers the person's discoverable passkeys for the portal (with the button, or in the
// email field's autofill: conditional mediation).
func (s *Service) BeginPasskeyLogin(ctx context.Context) (*PasskeyCeremony, error) {
	if s.relyingParty == nil {
		return nil, ErrNotFound
	}
	assertion, session, err := s.relyingParty.BeginDiscoverableLogin()
	if err != nil {
		return nil, fmt.Errorf("begin passkey sign-in: %w", err)
	}
	return s.beginCeremony(ctx, models.ChallengePasskeyLogin, nil, "", session, assertion.Response)
}

// SignInWithPasskey finishes a sign-in with a passkey alone and starts a session on the client's
// device (amr "hwk"). The passkey names its account by its user handle, which must be the
// account the credential was registered to. Every refusal is ErrPasskeyRefused.
func (s *Service) SignInWithPasskey(ctx context.Context, ceremony string, response []byte, c Client) (*Issued, error) {
	issued, err := s.signInWithPasskey(ctx, ceremony, response, c)
	switch {
	case errors.Is(err, ErrPasskeyRefused):
		s.loginOutcome("passkey_refused")
	case errors.Is(err, ErrEmailNotVerified):
		s.loginOutcome("email_not_verified")
	case err == nil:
		s.loginOutcome("ok")
	}
	return issued, err
}

func (s *Service) signInWithPasskey(ctx context.Context, ceremony string, response []byte, c Client) (*Issued, error) {
	if s.relyingParty == nil {
		return nil, refused(errors.New("passkeys are off"))
	}
	if !wellFormedChallenge(ceremony) {
		return nil, refused(errors.New("malformed ceremony"))
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return nil, refused(err)
	}
	owner, err := s.passkeyOwner(ctx, parsed)
	if err != nil {
		return nil, err
	}
	var (
		started  *newSession
		ended    []string
		user     *models.User
		verified bool
	)
	err = s.store.InTx(ctx, func(tx *models.Store) error {
		locked, err := tx.LockUser(ctx, owner)
		if errors.Is(err, models.ErrNotFound) {
			return refused(err)
		}
		if err != nil {
			return fmt.Errorf("lock user: %w", err)
		}
		user = locked
		if user.Disabled() {
			return refused(errors.New("account disabled"))
		}
		ch, session, err := s.openCeremony(ctx, tx, ceremony, models.ChallengePasskeyLogin)
		if err != nil {
			return err
		}
		pu, err := loadPasskeyUser(ctx, tx, user)
		if err != nil {
			return err
		}
		_, cred, err := s.relyingParty.ValidatePasskeyLogin(func(rawID, userHandle []byte) (webauthn.User, error) {
			if !bytes.Equal(userHandle, pu.WebAuthnID()) {
				return nil, errors.New("user handle of another account")
			}
			return pu, nil
		}, *session, parsed)
		if err != nil {
			return refused(err)
		}
		if err := s.passkeyUsed(ctx, tx, pu, cred); err != nil {
			return err
		}
		verified = user.EmailVerified()
		if s.cfg.EmailVerification == VerificationRequired && !verified {
			return ErrEmailNotVerified // nothing changes: the passkey signs in once the address is verified
		}
		if err := s.useCeremony(ctx, tx, ch); err != nil {
			return err
		}
		started, ended, err = s.startSessionInTx(ctx, tx, user, c, AMRPasskey)
		return err
	})
	if errors.Is(err, ErrEmailNotVerified) {
		if serr := s.SendVerification(ctx, user.ID); serr != nil {
			return nil, serr
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	s.revoked(user.ID, ended...)
	s.mailSent()
	return s.issueStarted(user.ID, user.TokenVersion, verified, started)
}

// passkeyOwner finds the account a sign-in's passkey belongs to: its credential must be registered,
// and its user handle must name the account it was registered to.
func (s *Service) passkeyOwner(ctx context.Context, parsed *protocol.ParsedCredentialAssertionData) (string, error) {
	handle := parsed.Response.UserHandle
	if len(handle) == 0 {
		return "", refused(errors.New("no user handle"))
	}
	f, err := s.store.FactorByCredentialID(ctx, parsed.RawID)
	if errors.Is(err, models.ErrNotFound) {
		return "", refused(errors.New("unknown credential"))
	}
	if err != nil {
		return "", fmt.Errorf("find passkey: %w", err)
	}
	if !bytes.Equal(handle, []byte(f.UserID)) {
		return "", refused(errors.New("user handle of another account"))
	}
	return f.UserID, nil
}

// BeginSecondFactorPasskey starts the passkey ceremony of a sign-in's second step, for the
// passkeys of the user whose password was right. The ceremony is kept on the sign-in's challenge,
// where a newer one replaces it. ErrInvalidToken when the second step is not open; ErrNotFound
// when the account has no passkey.
func (s *Service) BeginSecondFactorPasskey(ctx context.Context, challenge string) (*PasskeyCeremony, error) {
	if s.relyingParty == nil {
		return nil, ErrNotFound
	}
	ch, user, err := s.openSecondStep(ctx, s.store, challenge)
	if err != nil {
		return nil, err
	}
	pu, err := loadPasskeyUser(ctx, s.store, user)
	if err != nil {
		return nil, err
	}
	if len(pu.credentials) == 0 {
		return nil, ErrNotFound
	}
	assertion, session, err := s.relyingParty.BeginLogin(pu)
	if err != nil {
		return nil, fmt.Errorf("begin passkey second step: %w", err)
	}
	data, err := json.Marshal(session)
	if err != nil {
		return nil, err
	}
	opts, err := json.Marshal(assertion.Response)
	if err != nil {
		return nil, err
	}
	err = s.store.SetChallengeWebAuthn(ctx, ch.IDHash, models.ChallengeSecondFactor, string(data), MaxChallengeAttempts, s.clock())
	if errors.Is(err, models.ErrNotFound) {
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, fmt.Errorf("store ceremony: %w", err)
	}
	return &PasskeyCeremony{Options: opts, ExpiresAt: ch.ExpiresAt}, nil
}

// CompleteSecondFactorWithPasskey finishes a sign-in's second step with a passkey's answer to the
// challenge's WebAuthn ceremony (BeginSecondFactorPasskey) and starts the session (amr "pwd hwk").
// An answer that does not verify is ErrPasskeyRefused and counts against the challenge like a
// wrong code; a challenge that is not open is ErrInvalidToken.
func (s *Service) CompleteSecondFactorWithPasskey(ctx context.Context, challenge string, response []byte, c Client) (*Issued, error) {
	if _, _, err := s.openSecondStep(ctx, s.store, challenge); err != nil {
		return nil, err
	}
	issued, err := s.completeWithPasskey(ctx, challenge, response, c)
	if errors.Is(err, ErrPasskeyRefused) {
		s.secondStepFailed(ctx, challenge, c.IP)
	}
	return issued, err
}

func (s *Service) completeWithPasskey(ctx context.Context, challenge string, response []byte, c Client) (*Issued, error) {
	if s.relyingParty == nil {
		return nil, refused(errors.New("passkeys are off"))
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return nil, refused(err)
	}
	return s.finishSecondStep(ctx, challenge, c, func(tx *models.Store, user *models.User) (string, error) {
		ch, err := tx.OpenChallenge(ctx, hashToken(challenge), models.ChallengeSecondFactor, MaxChallengeAttempts, s.clock())
		if errors.Is(err, models.ErrNotFound) {
			return "", ErrInvalidToken
		}
		if err != nil {
			return "", fmt.Errorf("find challenge: %w", err)
		}
		session, err := sessionDataOf(ch)
		if err != nil {
			return "", err
		}
		if err := s.verifyKnownUser(ctx, tx, user, session, parsed); err != nil {
			return "", err
		}
		return AMRPasswordPasskey, nil
	})
}

// verifyKnownUser checks an assertion by one of user's passkeys against a ceremony begun for
// them, and stores the passkey's updated credential inside tx.
func (s *Service) verifyKnownUser(ctx context.Context, tx *models.Store, user *models.User, session *webauthn.SessionData, parsed *protocol.ParsedCredentialAssertionData) error {
	pu, err := loadPasskeyUser(ctx, tx, user)
	if err != nil {
		return err
	}
	if len(pu.credentials) == 0 {
		return refused(errors.New("the account has no passkey"))
	}
	cred, err := s.relyingParty.ValidateLogin(pu, *session, parsed)
	if err != nil {
		return refused(err)
	}
	return s.passkeyUsed(ctx, tx, pu, cred)
}

// BeginPasskeyReauth starts confirming a sensitive action with one of the signed-in user's
// passkeys, on this session; ErrNotFound when the account has none.
func (s *Service) BeginPasskeyReauth(ctx context.Context, p *Principal) (*PasskeyCeremony, error) {
	if s.relyingParty == nil {
		return nil, ErrNotFound
	}
	user, err := s.store.UserByID(ctx, p.UserID)
	if err != nil {
		return nil, fmt.Errorf("read user: %w", err)
	}
	pu, err := loadPasskeyUser(ctx, s.store, user)
	if err != nil {
		return nil, err
	}
	if len(pu.credentials) == 0 {
		return nil, ErrNotFound
	}
	assertion, session, err := s.relyingParty.BeginLogin(pu)
	if err != nil {
		return nil, fmt.Errorf("begin passkey confirmation: %w", err)
	}
	return s.beginCeremony(ctx, models.ChallengePasskeyReauth, &p.UserID, p.SessionID, session, assertion.Response)
}

// ConfirmWithPasskey re-authenticates the user on this device with a passkey's answer to ceremony
// (BeginPasskeyReauth, on this session), for sensitive actions as ConfirmPassword does with the
// password. A refused answer is ErrPasskeyRefused and is recorded as a failed second factor.
func (s *Service) ConfirmWithPasskey(ctx context.Context, p *Principal, ceremony string, response []byte, ip string) error {
	err := s.confirmWithPasskey(ctx, p, ceremony, response)
	if errors.Is(err, ErrPasskeyRefused) {
		event := &models.SecurityEvent{UserID: p.UserID, SessionID: p.SessionID, Kind: models.EventSecondFactorFailed, IP: ip, CreatedAt: s.clock()}
		if rerr := s.store.RecordEvent(ctx, event); rerr != nil {
			return fmt.Errorf("record refused passkey: %w", rerr)
		}
		return err
	}
	if err != nil {
		return err
	}
	s.revoked(p.UserID, p.SessionID)
	return nil
}

func (s *Service) confirmWithPasskey(ctx context.Context, p *Principal, ceremony string, response []byte) error {
	if s.relyingParty == nil {
		return refused(errors.New("passkeys are off"))
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return refused(err)
	}
	return s.store.InTx(ctx, func(tx *models.Store) error {
		user, ch, session, err := s.openSessionCeremony(ctx, tx, p, ceremony, models.ChallengePasskeyReauth)
		if err != nil {
			return err
		}
		if err := s.verifyKnownUser(ctx, tx, user, session, parsed); err != nil {
			return err
		}
		if err := s.useCeremony(ctx, tx, ch); err != nil {
			return err
		}
		if err := tx.MarkAuthenticated(ctx, p.SessionID, s.clock()); err != nil {
			return fmt.Errorf("mark authenticated: %w", err)
		}
		return nil
	})
}
