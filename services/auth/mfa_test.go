package auth_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/models/testdb"
	"gatehouse/services/auth"
	"gatehouse/services/mail"
)

// Second factors: TOTP enrolment, the second step of a sign-in (TOTP and recovery codes), the
// challenge that binds it, re-authentication with a code, and the operator's reset. The test is
// Ann's phone: it computes each code from the secret the enrolment showed (auth.TOTPCode).

const (
	ann      = "ann@example.com"
	bob      = "bob@example.com"
	annPhone = "ann-phone"
	testIP   = "192.0.2.7"
)

// mfaEnv is env with a mailer that writes to the outbox, and Ann signed in on her laptop.
type mfaEnv struct {
	*env
	laptop *auth.Issued
}

func newMFAEnv(t *testing.T, db *testdb.DB) *mfaEnv {
	t.Helper()
	e := newEnv(t, db)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sender, err := mail.NewSender(mail.Config{From: "Gatehouse <no-reply@gatehouse.test>", PollInterval: time.Hour},
		mail.Deps{Store: db.Store, Transport: mail.NewLogTransport(log), Now: e.clock.Now, Random: rand.Reader, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	e.svc.SetMailer(sender)
	// 10 s into a time step, so that "this step" and "the next" are never ambiguous.
	e.clock.Set(time.Unix(e.clock.Now().Unix()/30*30+10, 0).UTC())
	e.user(t, ann)
	m := &mfaEnv{env: e}
	m.laptop = e.signIn(t, ann, "ann-laptop")
	return m
}

// principal is who an access token speaks for, as the handlers get it.
func (m *mfaEnv) principal(t *testing.T, access string) *auth.Principal {
	t.Helper()
	p, err := m.svc.Verify(m.ctx, access)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return p
}

// laptopNow is who the laptop is now: its refresh token rotated for a fresh access token (moving
// the clock past the re-authentication window also outlives an access token).
func (m *mfaEnv) laptopNow(t *testing.T) *auth.Principal {
	t.Helper()
	issued, err := m.refresh(m.laptop.RefreshToken)
	if err != nil {
		t.Fatalf("refresh the laptop: %v", err)
	}
	m.laptop = issued
	return m.principal(t, issued.AccessToken)
}

// nextStep moves the clock n TOTP time steps on.
func (m *mfaEnv) nextStep(n int) { m.clock.Advance(time.Duration(n) * 30 * time.Second) }

// code is what the phone shows for secret, skew time steps away from now.
func (m *mfaEnv) code(t *testing.T, secret string, skew int) string {
	t.Helper()
	c, err := auth.TOTPCode(secret, m.clock.Now().Add(time.Duration(skew)*30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// enrolled is an authenticator app turned on: its secret and the recovery codes it came with.
type enrolled struct {
	factorID, secret string
	codes            []string
}

// enrol adds an authenticator app for p, confirming it with the code of now, and moves the clock to
// the next time step (the confirming code is used up).
func (m *mfaEnv) enrol(t *testing.T, p *auth.Principal, name string) enrolled {
	t.Helper()
	en, err := m.svc.BeginTOTP(m.ctx, p)
	if err != nil {
		t.Fatalf("begin TOTP: %v", err)
	}
	codes, err := m.svc.ConfirmTOTP(m.ctx, p, en.FactorID, name, m.code(t, en.Secret, 0), testIP)
	if err != nil {
		t.Fatalf("confirm TOTP: %v", err)
	}
	m.nextStep(1)
	return enrolled{factorID: en.FactorID, secret: en.Secret, codes: codes}
}

func client(device string) auth.Client {
	return auth.Client{DeviceID: device, UserAgent: "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36", IP: testIP}
}

// startSignIn enters email's password on device and expects the second step.
func (m *mfaEnv) startSignIn(t *testing.T, email, device string) string {
	t.Helper()
	issued, err := m.svc.SignIn(m.ctx, email, testPassword, client(device))
	var second *auth.SecondFactorRequired
	if !errors.As(err, &second) {
		t.Fatalf("sign in with a second factor: %+v, %v; want SecondFactorRequired", issued, err)
	}
	if !strings.HasPrefix(second.Challenge, "ghc_") || !second.ExpiresAt.Equal(m.clock.Now().Add(auth.ChallengeTTL)) {
		t.Fatalf("challenge %q until %s", second.Challenge, second.ExpiresAt)
	}
	return second.Challenge
}

func (m *mfaEnv) complete(challenge, code, device string) (*auth.Issued, error) {
	return m.svc.CompleteSecondFactor(m.ctx, challenge, code, client(device))
}

// mustComplete finishes a second step and checks the amr of the session it started.
func (m *mfaEnv) mustComplete(t *testing.T, challenge, code, device string, amr ...string) *auth.Issued {
	t.Helper()
	issued, err := m.complete(challenge, code, device)
	if err != nil {
		t.Fatalf("complete the second step with %q: %v", code, err)
	}
	if got := amrOf(t, issued.AccessToken); !slices.Equal(got, amr) {
		t.Fatalf("amr %q, want %q", got, amr)
	}
	if _, err := m.svc.Verify(m.ctx, issued.AccessToken); err != nil {
		t.Fatalf("the new access token: %v", err)
	}
	return issued
}

// refused: the second step answers want and starts no session.
func (m *mfaEnv) refused(t *testing.T, want error, challenge, code string) {
	t.Helper()
	before := m.sessions(t)
	issued, err := m.complete(challenge, code, annPhone)
	if !errors.Is(err, want) || issued != nil {
		t.Fatalf("complete with %.40q: %+v, %v; want %v", code, issued, err, want)
	}
	if after := m.sessions(t); after != before {
		t.Fatalf("a refused second step changed the sessions: %d, then %d", before, after)
	}
}

func (m *mfaEnv) sessions(t *testing.T) int64 {
	return m.db.Count(t, "SELECT COUNT(*) FROM device_sessions")
}

func (m *mfaEnv) events(t *testing.T, kind string) int64 {
	t.Helper()
	return m.db.Count(t, "SELECT COUNT(*) FROM security_events WHERE kind = ?", kind)
}

func (m *mfaEnv) attempts(t *testing.T, challenge string) int64 {
	t.Helper()
	return m.db.Count(t, "SELECT attempts FROM auth_challenges WHERE id_hash = ?", hash(challenge))
}

// outbox lists the subjects of the mail queued to addr, oldest first.
func (m *mfaEnv) outbox(t *testing.T, addr string) []string {
	t.Helper()
	var subjects []string
	if err := m.db.Store.DB().Raw("SELECT subject FROM mail_outbox WHERE recipient = ? ORDER BY id", addr).Scan(&subjects).Error; err != nil {
		t.Fatal(err)
	}
	return subjects
}

// amrOf reads the amr claim of an access token (the service checked the token; this reads it).
func amrOf(t *testing.T, jwt string) []string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		AMR []string `json:"amr"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c.AMR
}

// recoveryCodeShape: groups of letters and digits without i, l, o and 1, joined by dashes.
var recoveryCodeShape = regexp.MustCompile(`^[a-hjkmnp-z02-9]{4,}(-[a-hjkmnp-z02-9]{4,})+$`)

func TestTOTPEnrolment(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		m := newMFAEnv(t, db)
		p := m.principal(t, m.laptop.AccessToken)

		en, err := m.svc.BeginTOTP(m.ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(en.Secret)
		if err != nil || len(raw) != 20 {
			t.Fatalf("secret %q: %d bytes, %v; want 160 bits of base32", en.Secret, len(raw), err)
		}
		uri, err := url.Parse(en.URI)
		if err != nil || uri.Scheme != "otpauth" || uri.Host != "totp" || uri.Query().Get("secret") != en.Secret ||
			uri.Query().Get("issuer") != "Gatehouse" || uri.Query().Get("digits") != "6" || uri.Query().Get("period") != "30" {
			t.Fatalf("otpauth URI %q, %v", en.URI, err)
		}

		// The secret is sealed: the column holds neither its bytes nor its text.
		var sealed []byte
		if err := db.Store.DB().Raw("SELECT secret FROM factors WHERE id = ?", en.FactorID).Row().Scan(&sealed); err != nil {
			t.Fatal(err)
		}
		if len(sealed) == 0 || bytes.Contains(sealed, raw) || bytes.Contains(sealed, []byte(en.Secret)) ||
			bytes.Contains(bytes.ToUpper(sealed), []byte(en.Secret)) {
			t.Fatalf("factors.secret holds the secret in the clear: %x", sealed)
		}

		// Unconfirmed, it counts for nothing: the password alone still signs in.
		if sec, err := m.svc.SecurityOf(m.ctx, p.UserID); err != nil || sec.HasSecondFactor() || sec.RecoveryCodesLeft != 0 {
			t.Fatalf("security before the first code: %+v, %v", sec, err)
		}
		if issued, err := m.svc.SignIn(m.ctx, ann, testPassword, client("ann-tablet")); err != nil || issued == nil {
			t.Fatalf("sign in while an enrolment waits: %v; want a session from the password alone", err)
		}

		// A wrong first code: the enrolment waits on, and can be shown again.
		wrong := m.code(t, en.Secret, 5)
		_, err = m.svc.ConfirmTOTP(m.ctx, p, en.FactorID, "Pixel", wrong, testIP)
		var invalid *auth.ValidationError
		if !errors.As(err, &invalid) || invalid.Field != "code" || !errors.Is(err, auth.ErrInvalidCode) {
			t.Fatalf("confirm with a wrong code: %v; want a ValidationError on code wrapping ErrInvalidCode", err)
		}
		again, err := m.svc.TOTPEnrolmentOf(m.ctx, p, en.FactorID)
		if err != nil || again.Secret != en.Secret || again.URI != en.URI {
			t.Fatalf("the enrolment shown again: %+v, %v", again, err)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM factors WHERE confirmed_at IS NOT NULL"); n != 0 {
			t.Fatalf("a wrong code confirmed the enrolment (%d confirmed)", n)
		}
		// A name that is too long is refused before the code is looked at.
		if _, err := m.svc.ConfirmTOTP(m.ctx, p, en.FactorID, strings.Repeat("n", 65), m.code(t, en.Secret, 0), testIP); !errors.As(err, &invalid) || invalid.Field != "name" {
			t.Fatalf("a 65-character name: %v", err)
		}

		codes, err := m.svc.ConfirmTOTP(m.ctx, p, en.FactorID, "  ", m.code(t, en.Secret, 0), testIP)
		if err != nil {
			t.Fatalf("confirm: %v", err)
		}
		if len(codes) != auth.RecoveryCodeCount || auth.RecoveryCodeCount != 10 {
			t.Fatalf("%d recovery codes, want 10", len(codes))
		}
		seen := map[string]bool{}
		for _, c := range codes {
			if !recoveryCodeShape.MatchString(c) || len(strings.ReplaceAll(c, "-", "")) < 16 || seen[c] {
				t.Fatalf("recovery code %q: not groups of at least 16 letters in all, or repeated in %q", c, codes)
			}
			seen[c] = true
			if n := db.Count(t, "SELECT COUNT(*) FROM recovery_codes WHERE code_hash = ? OR code_hash = ?", []byte(c), []byte(strings.ReplaceAll(c, "-", ""))); n != 0 {
				t.Fatalf("recovery code %q stored in the clear", c)
			}
		}
		sec, err := m.svc.SecurityOf(m.ctx, p.UserID)
		if err != nil || len(sec.Factors) != 1 || sec.RecoveryCodesLeft != 10 {
			t.Fatalf("security after the first code: %+v, %v", sec, err)
		}
		if f := sec.Factors[0]; f.ID != en.FactorID || f.Kind != "totp" || f.Name != "Authenticator app" {
			t.Fatalf("the factor: %+v (an empty name takes the default)", f)
		}
		if m.events(t, "totp_added") != 1 || m.events(t, "recovery_codes_generated") != 1 {
			t.Fatal("the new factor and its codes are not recorded as security events")
		}

		// Once confirmed, the enrolment cannot be confirmed (or shown) again: the answer says it
		// is on, for the page to say so to a person who submitted the form twice.
		if _, err := m.svc.ConfirmTOTP(m.ctx, p, en.FactorID, "Again", m.code(t, en.Secret, 1), testIP); !errors.Is(err, auth.ErrFactorAlreadyOn) {
			t.Fatalf("confirm twice: %v; want ErrFactorAlreadyOn", err)
		}
		if _, err := m.svc.TOTPEnrolmentOf(m.ctx, p, en.FactorID); !errors.Is(err, auth.ErrFactorAlreadyOn) {
			t.Fatalf("show a confirmed enrolment: %v; want ErrFactorAlreadyOn", err)
		}

		// A second app comes without new codes: the set of the first stays.
		m.nextStep(1)
		second := m.enrol(t, p, "Backup phone")
		if second.codes != nil {
			t.Fatalf("a second factor made new recovery codes: %q", second.codes)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM recovery_codes WHERE used_at IS NULL"); n != 10 {
			t.Fatalf("%d recovery codes after the second factor, want the first 10", n)
		}

		// The password now leads to the second step, and each app's code finishes it.
		m.mustComplete(t, m.startSignIn(t, ann, annPhone), m.code(t, en.Secret, 0), annPhone, "pwd", "otp")
		m.mustComplete(t, m.startSignIn(t, ann, annPhone), m.code(t, second.secret, 0), annPhone, "pwd", "otp")
	})
}

func TestTOTPSecretNeedsTheServerSecret(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		m := newMFAEnv(t, db)
		p := m.principal(t, m.laptop.AccessToken)
		app := m.enrol(t, p, "Phone")

		// Another server secret (another key directory) on the same database cannot open it.
		other := newService(t, db, m.clock, t.TempDir())
		issued, err := other.SignIn(m.ctx, ann, testPassword, client(annPhone))
		var second *auth.SecondFactorRequired
		if !errors.As(err, &second) {
			t.Fatalf("sign in: %+v, %v", issued, err)
		}
		before := m.sessions(t)
		issued, err = other.CompleteSecondFactor(m.ctx, second.Challenge, m.code(t, app.secret, 0), client(annPhone))
		if err == nil || issued != nil || errors.Is(err, auth.ErrInvalidCode) || !strings.Contains(err.Error(), "open secret") {
			t.Fatalf("a right code under another server secret: %+v, %v; want the secret not to open", issued, err)
		}
		if m.sessions(t) != before {
			t.Fatal("a session started although the secret did not open")
		}
		// Under the right secret the same challenge and code work: nothing was used up.
		m.mustComplete(t, second.Challenge, m.code(t, app.secret, 0), annPhone, "pwd", "otp")
	})
}

func TestTOTPEnrolmentExpires(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		m := newMFAEnv(t, db)
		p := m.principal(t, m.laptop.AccessToken)
		early, err := m.svc.BeginTOTP(m.ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		late, err := m.svc.BeginTOTP(m.ctx, p)
		if err != nil {
			t.Fatal(err)
		}

		m.clock.Advance(29 * time.Minute) // within the 30 minutes: confirming needs no new password
		if _, err := m.svc.ConfirmTOTP(m.ctx, p, early.FactorID, "", m.code(t, early.Secret, 0), testIP); err != nil {
			t.Fatalf("confirm after 29 minutes: %v", err)
		}
		m.clock.Advance(2 * time.Minute)
		if _, err := m.svc.ConfirmTOTP(m.ctx, p, late.FactorID, "", m.code(t, late.Secret, 0), testIP); !errors.Is(err, auth.ErrNotFound) {
			t.Fatalf("confirm after 31 minutes: %v; want ErrNotFound", err)
		}
		if _, err := m.svc.TOTPEnrolmentOf(m.ctx, p, late.FactorID); !errors.Is(err, auth.ErrNotFound) {
			t.Fatalf("show after 31 minutes: %v; want ErrNotFound", err)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM factors WHERE id = ? AND confirmed_at IS NULL", late.FactorID); n != 1 {
			t.Fatal("the late enrolment changed")
		}

		// Beginning (unlike confirming) needs the password within 10 minutes.
		if _, err := m.svc.BeginTOTP(m.ctx, p); !errors.Is(err, auth.ErrReauthRequired) {
			t.Fatalf("begin 31 minutes after the password: %v; want ErrReauthRequired", err)
		}
	})
}

func TestFactorOfAnotherUser(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		m := newMFAEnv(t, db)
		m.user(t, bob)
		annP := m.principal(t, m.laptop.AccessToken)
		bobP := m.principal(t, m.signIn(t, bob, "bob-laptop").AccessToken)

		pending, err := m.svc.BeginTOTP(m.ctx, bobP)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.svc.ConfirmTOTP(m.ctx, annP, pending.FactorID, "", m.code(t, pending.Secret, 0), testIP); !errors.Is(err, auth.ErrNotFound) {
			t.Fatalf("Ann confirms Bob's enrolment: %v; want ErrNotFound", err)
		}
		if _, err := m.svc.TOTPEnrolmentOf(m.ctx, annP, pending.FactorID); !errors.Is(err, auth.ErrNotFound) {
			t.Fatalf("Ann reads Bob's enrolment: %v; want ErrNotFound", err)
		}
		bobs := m.enrol(t, bobP, "Bob's phone")
		if _, err := m.svc.RemoveFactor(m.ctx, annP, bobs.factorID, testIP); !errors.Is(err, auth.ErrNotFound) {
			t.Fatalf("Ann removes Bob's factor: %v; want ErrNotFound", err)
		}
		if err := m.svc.RenameFactor(m.ctx, annP, bobs.factorID, "Mine now"); !errors.Is(err, auth.ErrNotFound) {
			t.Fatalf("Ann renames Bob's factor: %v; want ErrNotFound", err)
		}
		for _, id := range []string{"", "x", "../" + bobs.factorID, strings.Repeat("a", 10000), bobs.factorID + "A", "Ω" + bobs.factorID[2:]} {
			if _, err := m.svc.RemoveFactor(m.ctx, annP, id, testIP); !errors.Is(err, auth.ErrNotFound) {
				t.Fatalf("remove %.40q: %v; want ErrNotFound", id, err)
			}
			if err := m.svc.RenameFactor(m.ctx, annP, id, "name"); !errors.Is(err, auth.ErrNotFound) {
				t.Fatalf("rename %.40q: %v; want ErrNotFound", id, err)
			}
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM factors WHERE id = ? AND name = 'Bob''s phone'", bobs.factorID); n != 1 {
			t.Fatal("Bob's factor changed")
		}
		// Bob's own rename works (so the refusals above are about the owner).
		if err := m.svc.RenameFactor(m.ctx, bobP, bobs.factorID, "Pixel"); err != nil {
			t.Fatalf("Bob renames his factor: %v", err)
		}
		var invalid *auth.ValidationError
		if err := m.svc.RenameFactor(m.ctx, bobP, bobs.factorID, strings.Repeat("n", 65)); !errors.As(err, &invalid) {
			t.Fatalf("a 65-character name: %v", err)
		}
	})
}

func TestSignInWithTOTP(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		m := newMFAEnv(t, db)
		app := m.enrol(t, m.principal(t, m.laptop.AccessToken), "Phone")

		before := m.sessions(t)
		challenge := m.startSignIn(t, ann, annPhone)
		if m.sessions(t) != before {
			t.Fatal("a session started before the second step")
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM auth_challenges WHERE id_hash = ?", []byte(challenge)); n != 0 {
			t.Fatal("the challenge is stored in the clear")
		}
		pending, err := m.svc.PendingSecondStep(m.ctx, challenge)
		if err != nil || !pending.TOTP || pending.Passkeys || pending.RecoveryCodes != 10 {
			t.Fatalf("pending second step: %+v, %v", pending, err)
		}

		// The code of an app still waiting for its first code does not count.
		pendingApp, err := m.svc.BeginTOTP(m.ctx, m.principal(t, m.laptop.AccessToken))
		if err != nil {
			t.Fatal(err)
		}
		m.refused(t, auth.ErrInvalidCode, challenge, m.code(t, pendingApp.Secret, 0))

		issued := m.mustComplete(t, challenge, m.code(t, app.secret, 0), annPhone, "pwd", "otp")
		if got := mustSession(t, m.env, issued.SessionID).AMR; got != "pwd otp" {
			t.Fatalf("session amr %q, want \"pwd otp\"", got)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM security_events WHERE kind = 'signed_in' AND session_id = ? AND detail = 'pwd otp'", issued.SessionID); n != 1 {
			t.Fatal("the sign-in event does not say how it signed in")
		}
		// The challenge is used up.
		m.refused(t, auth.ErrInvalidToken, challenge, m.code(t, app.secret, 0))
		// The same code again, in the same time step, on a new sign-in: a replay.
		replay := m.startSignIn(t, ann, annPhone)
		m.refused(t, auth.ErrInvalidCode, replay, m.code(t, app.secret, 0))
		// ... and the code of the step before it is no better.
		m.refused(t, auth.ErrInvalidCode, replay, m.code(t, app.secret, -1))
		// The amr survives a refresh.
		m.clock.Advance(time.Minute)
		refreshed, err := m.refresh(issued.RefreshToken)
		if err != nil || !slices.Equal(amrOf(t, refreshed.AccessToken), []string{"pwd", "otp"}) {
			t.Fatalf("refresh: %v; amr must stay [pwd otp]", err)
		}
		m.mustComplete(t, replay, m.code(t, app.secret, 0), annPhone, "pwd", "otp")
	})
}

func TestTOTPSkew(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		m := newMFAEnv(t, db)
		app := m.enrol(t, m.principal(t, m.laptop.AccessToken), "Phone")

		m.nextStep(10)
		m.mustComplete(t, m.startSignIn(t, ann, annPhone), m.code(t, app.secret, -1), annPhone, "pwd", "otp")
		m.nextStep(10)
		m.mustComplete(t, m.startSignIn(t, ann, annPhone), m.code(t, app.secret, +1), annPhone, "pwd", "otp")
		m.nextStep(10)
		for _, skew := range []int{-2, +2, -3, +3, -20} {
			challenge := m.startSignIn(t, ann, annPhone)
			m.refused(t, auth.ErrInvalidCode, challenge, m.code(t, app.secret, skew))
		}
		// The edges of the window: the first second of the step before, the last of the step after.
		for _, edge := range []struct{ steps, second int64 }{{-1, 0}, {+1, 29}} {
			at := (m.clock.Now().Unix()/30+edge.steps)*30 + edge.second
			phone, err := auth.TOTPCode(app.secret, time.Unix(at, 0))
			if err != nil {
				t.Fatal(err)
			}
			m.mustComplete(t, m.startSignIn(t, ann, annPhone), phone, annPhone, "pwd", "otp")
			m.nextStep(10)
		}
	})
}

func TestChallengeAttempts(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		m := newMFAEnv(t, db)
		app := m.enrol(t, m.principal(t, m.laptop.AccessToken), "Phone")
		if auth.MaxChallengeAttempts != 5 {
			t.Fatalf("MaxChallengeAttempts %d", auth.MaxChallengeAttempts)
		}

		// One wrong code fewer than the limit leaves the challenge open.
		almost := m.startSignIn(t, ann, annPhone)
		for i := 0; i < auth.MaxChallengeAttempts-1; i++ {
			m.refused(t, auth.ErrInvalidCode, almost, "000000")
		}
		if n := m.attempts(t, almost); n != auth.MaxChallengeAttempts-1 {
			t.Fatalf("%d attempts counted, want %d", n, auth.MaxChallengeAttempts-1)
		}
		m.mustComplete(t, almost, m.code(t, app.secret, 0), annPhone, "pwd", "otp")
		m.nextStep(1)

		failedBefore := m.events(t, "second_factor_failed")
		dead := m.startSignIn(t, ann, annPhone)
		wrong := []string{"000000", "12345", "1234567", "abcdef", strings.Repeat("9", 10000)}
		for _, code := range wrong {
			m.refused(t, auth.ErrInvalidCode, dead, code)
		}
		if got := m.events(t, "second_factor_failed") - failedBefore; got != int64(len(wrong)) {
			t.Fatalf("%d wrong codes recorded, want %d", got, len(wrong))
		}
		m.refused(t, auth.ErrInvalidToken, dead, m.code(t, app.secret, 0))
		if _, err := m.svc.PendingSecondStep(m.ctx, dead); !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("pending after %d wrong codes: %v; want ErrInvalidToken", len(wrong), err)
		}
		if n := m.attempts(t, dead); n != int64(auth.MaxChallengeAttempts) {
			t.Fatalf("%d attempts counted, want %d (a dead challenge counts no more)", n, auth.MaxChallengeAttempts)
		}
		// The refused right code was not used up: a new sign-in takes it.
		m.mustComplete(t, m.startSignIn(t, ann, annPhone), m.code(t, app.secret, 0), annPhone, "pwd", "otp")
	})
}

func TestChallengeExpires(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		m := newMFAEnv(t, db)
		app := m.enrol(t, m.principal(t, m.laptop.AccessToken), "Phone")

		inTime := m.startSignIn(t, ann, annPhone)
		late := m.startSignIn(t, ann, annPhone)
		m.clock.Advance(auth.ChallengeTTL - time.Second)
		m.mustComplete(t, inTime, m.code(t, app.secret, 0), annPhone, "pwd", "otp")
		m.clock.Advance(2 * time.Second)
		m.nextStep(1)
		m.refused(t, auth.ErrInvalidToken, late, m.code(t, app.secret, 0))
		if _, err := m.svc.PendingSecondStep(m.ctx, late); !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("pending after ChallengeTTL: %v; want ErrInvalidToken", err)
		}
	})
}

func TestMalformedChallenges(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		m := newMFAEnv(t, db)
		app := m.enrol(t, m.principal(t, m.laptop.AccessToken), "Phone")
		issued := m.startSignIn(t, ann, annPhone)
		for _, challenge := range []string{
			"", "ghc_", "ghc_" + strings.Repeat("A", 42), "ghc_" + strings.Repeat("A", 44), "ghx_" + issued[4:],
			issued[:len(issued)-1] + "!", issued + "=", strings.ToUpper(issued), "ghc_" + strings.Repeat("é", 21) + "A",
			strings.Repeat("ghc_", 3000), issued[4:], "ghc_" + strings.Repeat("A", 43), // well formed, never issued
		} {
			if _, err := m.svc.PendingSecondStep(m.ctx, challenge); !errors.Is(err, auth.ErrInvalidToken) {
				t.Fatalf("pending %.50q: %v; want ErrInvalidToken", challenge, err)
			}
			m.refused(t, auth.ErrInvalidToken, challenge, m.code(t, app.secret, 0))
		}
		if n := m.attempts(t, issued); n != 0 {
			t.Fatalf("garbage counted %d attempts against a real challenge", n)
		}
		m.mustComplete(t, issued, m.code(t, app.secret, 0), annPhone, "pwd", "otp")
	})
}

func TestChallengeOfAnotherUser(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		m := newMFAEnv(t, db)
		m.user(t, bob)
		annApp := m.enrol(t, m.principal(t, m.laptop.AccessToken), "Ann's phone")
		bobApp := m.enrol(t, m.principal(t, m.signIn(t, bob, "bob-laptop").AccessToken), "Bob's phone")

		annChallenge := m.startSignIn(t, ann, annPhone)
		bobChallenge := m.startSignIn(t, bob, "bob-phone")
		// Bob's codes do not finish Ann's sign-in, nor Ann's his.
		m.refused(t, auth.ErrInvalidCode, annChallenge, m.code(t, bobApp.secret, 0))
		m.refused(t, auth.ErrInvalidCode, annChallenge, bobApp.codes[0])
		m.refused(t, auth.ErrInvalidCode, bobChallenge, m.code(t, annApp.secret, 0))
		m.refused(t, auth.ErrInvalidCode, bobChallenge, annApp.codes[0])
		if n := db.Count(t, "SELECT COUNT(*) FROM recovery_codes WHERE used_at IS NOT NULL"); n != 0 {
			t.Fatalf("a refused recovery code was used up (%d used)", n)
		}
		// Each finishes their own, and the session is theirs.
		annIssued := m.mustComplete(t, annChallenge, m.code(t, annApp.secret, 0), annPhone, "pwd", "otp")
		bobIssued := m.mustComplete(t, bobChallenge, bobApp.codes[0], "bob-phone", "pwd", "rec")
		if annP := m.principal(t, annIssued.AccessToken); annP.Email != ann {
			t.Fatalf("Ann's second step signed in %s", annP.Email)
		}
		if bobP := m.principal(t, bobIssued.AccessToken); bobP.Email != bob {
			t.Fatalf("Bob's second step signed in %s", bobP.Email)
		}
	})
}

// TestConfirmTOTPTwiceAtOnce: the same enrolment confirmed by two requests at once (a double
// click) turns the app on once, with one set of recovery codes; the other request is told the
// app is on, whichever step it had reached when the first committed.
func TestConfirmTOTPTwiceAtOnce(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		m := newMFAEnv(t, db)
		p := m.principal(t, m.laptop.AccessToken)
		for round := range 5 {
			en, err := m.svc.BeginTOTP(m.ctx, p)
			if err != nil {
				t.Fatalf("round %d: start: %v", round, err)
			}
			code := m.code(t, en.Secret, 0)
			var (
				wg    sync.WaitGroup
				codes [2][]string
				errs  [2]error
			)
			for i := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					codes[i], errs[i] = m.svc.ConfirmTOTP(m.ctx, p, en.FactorID, "Phone", code, testIP)
				}()
			}
			wg.Wait()
			won := 0
			for i := range 2 {
				switch {
				case errs[i] == nil:
					won++
				case !errors.Is(errs[i], auth.ErrFactorAlreadyOn):
					t.Fatalf("round %d: confirm %d: %v; want success or ErrFactorAlreadyOn", round, i, errs[i])
				}
			}
			if won != 1 {
				t.Fatalf("round %d: %d confirmations went through (%v), want 1", round, won, errs)
			}
			if round == 0 && len(codes[0])+len(codes[1]) != 10 {
				t.Fatalf("round 0: recovery codes %q and %q, want one set of 10", codes[0], codes[1])
			}
			m.nextStep(1)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM factors WHERE confirmed_at IS NOT NULL"); n != 5 {
			t.Fatalf("%d apps on, want 5", n)
		}
	})
}

// TestConcurrentCompletions: however many answers to one challenge run at once, one session starts,
// and the codes of the answers that lost are not used up.
func TestConcurrentCompletions(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		m := newMFAEnv(t, db)
		app := m.enrol(t, m.principal(t, m.laptop.AccessToken), "Phone")

		for round, codes := range [][]string{
			app.codes[:8],                          // eight different recovery codes
			slices.Repeat([]string{"totp"}, 8),     // the phone's code, eight times
			{"totp", "totp", app.codes[8], "totp"}, // both kinds
		} {
			challenge := m.startSignIn(t, ann, annPhone)
			before := m.sessions(t)
			codesBefore := db.Count(t, "SELECT COUNT(*) FROM recovery_codes WHERE used_at IS NULL")
			var (
				wg     sync.WaitGroup
				mu     sync.Mutex
				wins   []*auth.Issued
				losses []error
			)
			for _, code := range codes {
				if code == "totp" {
					code = m.code(t, app.secret, 0)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					issued, err := m.complete(challenge, code, annPhone)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						losses = append(losses, err)
						return
					}
					wins = append(wins, issued)
				}()
			}
			wg.Wait()
			if len(wins) != 1 {
				t.Fatalf("round %d: %d sessions started from one challenge, want 1 (errors %v)", round, len(wins), losses)
			}
			for _, err := range losses {
				if !errors.Is(err, auth.ErrInvalidToken) && !errors.Is(err, auth.ErrInvalidCode) {
					t.Fatalf("round %d: a losing answer: %v; want ErrInvalidToken or ErrInvalidCode", round, err)
				}
			}
			if got := m.sessions(t) - before; got != 1 {
				t.Fatalf("round %d: %d sessions in the database, want 1", round, got)
			}
			usedOne := codesBefore - db.Count(t, "SELECT COUNT(*) FROM recovery_codes WHERE used_at IS NULL")
			if amr := amrOf(t, wins[0].AccessToken); slices.Equal(amr, []string{"pwd", "rec"}) != (usedOne == 1) || usedOne > 1 {
				t.Fatalf("round %d: the winner signed in with %q and %d recovery codes were used up", round, amr, usedOne)
			}
			m.nextStep(1)
		}
	})
}

func TestChallengeEndsWhenTheAccountChanges(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(t *testing.T, m *mfaEnv, p *auth.Principal)
	}{
		{"password changed", func(t *testing.T, m *mfaEnv, p *auth.Principal) {
			if _, err := m.svc.ChangePassword(m.ctx, p, testPassword, "a new password, long enough", "a new password, long enough", testIP); err != nil {
				t.Fatal(err)
			}
		}},
		{"signed out everywhere", func(t *testing.T, m *mfaEnv, p *auth.Principal) {
			if err := m.svc.SignOutEverywhere(m.ctx, p, testIP); err != nil {
				t.Fatal(err)
			}
		}},
		{"disabled", func(t *testing.T, m *mfaEnv, _ *auth.Principal) {
			if err := m.svc.DisableUser(m.ctx, ann); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			testdb.Each(t, func(t *testing.T, db *testdb.DB) {
				m := newMFAEnv(t, db)
				p := m.principal(t, m.laptop.AccessToken)
				app := m.enrol(t, p, "Phone")
				challenge := m.startSignIn(t, ann, annPhone)
				c.change(t, m, p)
				m.refused(t, auth.ErrInvalidToken, challenge, m.code(t, app.secret, 0))
				m.refused(t, auth.ErrInvalidToken, challenge, app.codes[0])
				if _, err := m.svc.PendingSecondStep(m.ctx, challenge); !errors.Is(err, auth.ErrInvalidToken) {
					t.Fatalf("pending: %v; want ErrInvalidToken", err)
				}
				if n := db.Count(t, "SELECT COUNT(*) FROM recovery_codes WHERE used_at IS NOT NULL"); n != 0 {
					t.Fatal("a refused recovery code was used up")
				}
			})
		})
	}
}

func TestRecoveryCodes(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		m := newMFAEnv(t, db)
		app := m.enrol(t, m.principal(t, m.laptop.AccessToken), "Phone")
		mailBefore := len(m.outbox(t, ann))

		challenge := m.startSignIn(t, ann, annPhone)
		issued := m.mustComplete(t, challenge, app.codes[0], annPhone, "pwd", "rec")
		if got := mustSession(t, m.env, issued.SessionID).AMR; got != "pwd rec" {
			t.Fatalf("session amr %q", got)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM security_events WHERE kind = 'recovery_code_used' AND ip = ?", testIP); n != 1 {
			t.Fatalf("%d recovery_code_used events, want 1", n)
		}
		mailAfter := m.outbox(t, ann)[mailBefore:]
		if !slices.Contains(mailAfter, "A recovery code was used on your Gatehouse account") {
			t.Fatalf("mail queued to Ann after a recovery code: %q", mailAfter)
		}
		var text string
		if err := db.Store.DB().Raw("SELECT text_body FROM mail_outbox WHERE kind = 'recovery_code_used'").Row().Scan(&text); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(text, "You have 9 recovery codes left.") {
			t.Fatalf("the notice does not say how many codes are left:\n%s", text)
		}
		if sec, _ := m.svc.SecurityOf(m.ctx, issued.UserID); sec.RecoveryCodesLeft != 9 {
			t.Fatalf("%d codes left, want 9", sec.RecoveryCodesLeft)
		}

		// Used once, refused after, however it is typed.
		again := m.startSignIn(t, ann, annPhone)
		m.refused(t, auth.ErrInvalidCode, again, app.codes[0])
		m.refused(t, auth.ErrInvalidCode, again, strings.ToUpper(app.codes[0]))

		// Dashes, spaces and case do not matter.
		typed := []string{
			strings.ToUpper(app.codes[1]),
			strings.ReplaceAll(app.codes[2], "-", " "),
			strings.ReplaceAll(app.codes[3], "-", ""),
			"  " + strings.ReplaceAll(strings.ToUpper(app.codes[4]), "-", " - ") + "\t",
		}
		for _, code := range typed {
			m.mustComplete(t, m.startSignIn(t, ann, annPhone), code, annPhone, "pwd", "rec")
		}
		if n := m.events(t, "recovery_code_used"); n != 1+int64(len(typed)) {
			t.Fatalf("%d recovery_code_used events, want %d", n, 1+len(typed))
		}
		// Near misses are refused: a code with a letter changed, cut short, or with one extra.
		near := []string{app.codes[5][:len(app.codes[5])-1], app.codes[5] + "a", swapLast(app.codes[5])}
		for _, code := range near {
			m.refused(t, auth.ErrInvalidCode, m.startSignIn(t, ann, annPhone), code)
		}
		m.mustComplete(t, m.startSignIn(t, ann, annPhone), app.codes[5], annPhone, "pwd", "rec")
	})
}

func swapLast(code string) string {
	last := code[len(code)-1]
	next := byte('a')
	if last == 'a' {
		next = 'b'
	}
	return code[:len(code)-1] + string(next)
}

func TestRegenerateRecoveryCodes(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		m := newMFAEnv(t, db)
		p := m.principal(t, m.laptop.AccessToken)
		var invalid *auth.ValidationError
		if _, err := m.svc.RegenerateRecoveryCodes(m.ctx, p, testIP); !errors.As(err, &invalid) {
			t.Fatalf("codes without a second factor: %v; want a ValidationError", err)
		}
		app := m.enrol(t, p, "Phone")

		fresh, err := m.svc.RegenerateRecoveryCodes(m.ctx, p, testIP)
		if err != nil || len(fresh) != 10 {
			t.Fatalf("regenerate: %d codes, %v", len(fresh), err)
		}
		for _, c := range fresh {
			if slices.Contains(app.codes, c) {
				t.Fatalf("a new code %q was in the old set", c)
			}
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM recovery_codes"); n != 10 {
			t.Fatalf("%d recovery codes stored, want only the new 10", n)
		}
		challenge := m.startSignIn(t, ann, annPhone)
		for _, old := range app.codes[:3] {
			m.refused(t, auth.ErrInvalidCode, challenge, old)
		}
		m.mustComplete(t, challenge, fresh[9], annPhone, "pwd", "rec")

		m.clock.Advance(auth.SecurityReauthWindow + time.Second)
		if _, err := m.svc.RegenerateRecoveryCodes(m.ctx, p, testIP); !errors.Is(err, auth.ErrReauthRequired) {
			t.Fatalf("regenerate past the window: %v; want ErrReauthRequired", err)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM recovery_codes WHERE used_at IS NULL"); n != 9 {
			t.Fatalf("a refused regeneration changed the codes: %d unused", n)
		}
	})
}

func TestRemoveLastFactor(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		m := newMFAEnv(t, db)
		p := m.principal(t, m.laptop.AccessToken)
		first := m.enrol(t, p, "Phone")
		second := m.enrol(t, p, "Tablet")

		left, err := m.svc.RemoveFactor(m.ctx, p, first.factorID, testIP)
		if err != nil || !left {
			t.Fatalf("remove one of two: left=%v, %v", left, err)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM recovery_codes"); n != 10 {
			t.Fatalf("removing one of two factors dropped the codes (%d left)", n)
		}
		challenge := m.startSignIn(t, ann, annPhone)
		m.refused(t, auth.ErrInvalidCode, challenge, m.code(t, first.secret, 0))
		m.mustComplete(t, challenge, m.code(t, second.secret, 0), annPhone, "pwd", "otp")

		m.clock.Advance(auth.SecurityReauthWindow + time.Second)
		if _, err := m.svc.RemoveFactor(m.ctx, p, second.factorID, testIP); !errors.Is(err, auth.ErrReauthRequired) {
			t.Fatalf("remove past the window: %v; want ErrReauthRequired", err)
		}
		if err := m.svc.ConfirmPassword(m.ctx, p, testPassword, testIP); err != nil {
			t.Fatal(err)
		}
		p = m.laptopNow(t)
		left, err = m.svc.RemoveFactor(m.ctx, p, second.factorID, testIP)
		if err != nil || left {
			t.Fatalf("remove the last: left=%v, %v", left, err)
		}
		if _, err := m.svc.RemoveFactor(m.ctx, p, second.factorID, testIP); !errors.Is(err, auth.ErrNotFound) {
			t.Fatalf("remove it again: %v; want ErrNotFound", err)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM recovery_codes"); n != 0 {
			t.Fatalf("%d recovery codes outlived the last factor", n)
		}
		if m.events(t, "second_factor_removed") != 2 {
			t.Fatal("the removals are not recorded")
		}
		issued, err := m.svc.SignIn(m.ctx, ann, testPassword, client(annPhone))
		if err != nil || !slices.Equal(amrOf(t, issued.AccessToken), []string{"pwd"}) {
			t.Fatalf("sign in without factors: %v; want a session from the password alone", err)
		}
	})
}

func TestConfirmWithCode(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		m := newMFAEnv(t, db)
		var invalid *auth.ValidationError
		if err := m.svc.ConfirmWithCode(m.ctx, m.principal(t, m.laptop.AccessToken), "123456", testIP); !errors.As(err, &invalid) {
			t.Fatalf("a code without a second factor: %v; want a ValidationError", err)
		}
		app := m.enrol(t, m.principal(t, m.laptop.AccessToken), "Phone")

		m.clock.Advance(auth.SecurityReauthWindow + time.Minute)
		stale := m.laptopNow(t)
		if err := m.svc.RequireSecurityReauth(stale); !errors.Is(err, auth.ErrReauthRequired) {
			t.Fatalf("past the window: %v; want ErrReauthRequired", err)
		}
		// A wrong code: a ValidationError on "code" that counts like a wrong password.
		failed := m.events(t, "second_factor_failed")
		err := m.svc.ConfirmWithCode(m.ctx, stale, "123456", testIP)
		if !errors.As(err, &invalid) || invalid.Field != "code" || !errors.Is(err, auth.ErrWrongPassword) {
			t.Fatalf("a wrong code: %v", err)
		}
		if m.events(t, "second_factor_failed") != failed+1 {
			t.Fatal("the wrong code is not recorded")
		}
		if err := m.svc.RequireSecurityReauth(m.principal(t, m.laptop.AccessToken)); !errors.Is(err, auth.ErrReauthRequired) {
			t.Fatal("a wrong code re-authenticated")
		}

		if err := m.svc.ConfirmWithCode(m.ctx, stale, m.code(t, app.secret, 0), testIP); err != nil {
			t.Fatalf("the right code: %v", err)
		}
		if err := m.svc.RequireSecurityReauth(m.principal(t, m.laptop.AccessToken)); err != nil {
			t.Fatalf("after the code: %v", err)
		}
		// The code is used: it neither confirms again nor finishes a sign-in.
		if err := m.svc.ConfirmWithCode(m.ctx, stale, m.code(t, app.secret, 0), testIP); !errors.As(err, &invalid) {
			t.Fatalf("the same code again: %v", err)
		}
		m.refused(t, auth.ErrInvalidCode, m.startSignIn(t, ann, annPhone), m.code(t, app.secret, 0))

		// A recovery code confirms too, and is recorded and told by mail.
		m.clock.Advance(auth.SecurityReauthWindow + time.Minute)
		if err := m.svc.ConfirmWithCode(m.ctx, m.laptopNow(t), app.codes[0], testIP); err != nil {
			t.Fatalf("a recovery code: %v", err)
		}
		if m.events(t, "recovery_code_used") != 1 || !slices.Contains(m.outbox(t, ann), "A recovery code was used on your Gatehouse account") {
			t.Fatal("a recovery code used to re-authenticate is not recorded and told")
		}
	})
}

func TestResetSecondFactors(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		m := newMFAEnv(t, db)
		m.user(t, bob)
		p := m.principal(t, m.laptop.AccessToken)
		app := m.enrol(t, p, "Phone")
		m.enrol(t, p, "Tablet")
		bobApp := m.enrol(t, m.principal(t, m.signIn(t, bob, "bob-laptop").AccessToken), "Bob's phone")
		open := m.startSignIn(t, ann, annPhone)
		bobOpen := m.startSignIn(t, bob, "bob-phone")

		if _, err := m.svc.ResetSecondFactors(m.ctx, "nobody@example.com"); !errors.Is(err, auth.ErrNotFound) {
			t.Fatalf("reset an unknown address: %v; want ErrNotFound", err)
		}
		removed, err := m.svc.ResetSecondFactors(m.ctx, " ANN@example.com ")
		if err != nil || removed != 2 {
			t.Fatalf("reset: %d removed, %v; want 2", removed, err)
		}
		for what, q := range map[string]string{
			"factors":        "SELECT COUNT(*) FROM factors WHERE user_id = ?",
			"recovery codes": "SELECT COUNT(*) FROM recovery_codes WHERE user_id = ?",
			"challenges":     "SELECT COUNT(*) FROM auth_challenges WHERE user_id = ?",
		} {
			if n := db.Count(t, q, p.UserID); n != 0 {
				t.Fatalf("%d %s left after the reset", n, what)
			}
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM security_events WHERE kind = 'second_factors_reset' AND user_id = ?", p.UserID); n != 1 {
			t.Fatal("the reset is not recorded")
		}
		m.refused(t, auth.ErrInvalidToken, open, app.codes[0])
		issued, err := m.svc.SignIn(m.ctx, ann, testPassword, client(annPhone))
		if err != nil || !slices.Equal(amrOf(t, issued.AccessToken), []string{"pwd"}) {
			t.Fatalf("sign in after the reset: %v; want the password alone", err)
		}
		// Bob keeps his.
		m.mustComplete(t, bobOpen, bobApp.codes[0], "bob-phone", "pwd", "rec")
		if removed, err := m.svc.ResetSecondFactors(m.ctx, ann); err != nil || removed != 0 {
			t.Fatalf("reset again: %d, %v", removed, err)
		}
	})
}

var tokenInLink = regexp.MustCompile(`/password/reset\?token=([A-Za-z0-9_\-]+)`)

func TestPasswordResetWithSecondFactor(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		m := newMFAEnv(t, db)
		p := m.principal(t, m.laptop.AccessToken)
		app := m.enrol(t, p, "Phone")
		pendingBefore := m.startSignIn(t, ann, annPhone) // a sign-in in flight when the reset happens

		m.svc.RequestPasswordReset(m.ctx, ann)
		m.svc.Wait()
		var text string
		if err := db.Store.DB().Raw("SELECT text_body FROM mail_outbox WHERE kind = 'password_reset'").Row().Scan(&text); err != nil {
			t.Fatal(err)
		}
		found := tokenInLink.FindStringSubmatch(text)
		if found == nil {
			t.Fatalf("no reset link in:\n%s", text)
		}
		const next = "a brand new password"
		versionBefore := db.Count(t, "SELECT token_version FROM users WHERE id = ?", p.UserID)
		sessionsBefore := m.sessions(t)
		issued, err := m.svc.ResetPassword(m.ctx, found[1], next, next, client(annPhone))
		var second *auth.SecondFactorRequired
		if !errors.As(err, &second) || issued != nil {
			t.Fatalf("reset with a second factor: %+v, %v; want SecondFactorRequired", issued, err)
		}
		if db.Count(t, "SELECT token_version FROM users WHERE id = ?", p.UserID) != versionBefore+1 {
			t.Fatal("the reset did not bump token_version")
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM device_sessions WHERE revoked_at IS NULL"); n != 0 || m.sessions(t) != sessionsBefore {
			t.Fatalf("after the link: %d live sessions, %d new; want none", n, m.sessions(t)-sessionsBefore)
		}
		if _, err := m.svc.SignIn(m.ctx, ann, testPassword, client(annPhone)); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Fatalf("the old password: %v", err)
		}
		// The sign-in that was in flight belongs to the old password.
		m.refused(t, auth.ErrInvalidToken, pendingBefore, m.code(t, app.secret, 0))
		// The link is used: it does not open another second step.
		if _, err := m.svc.ResetPassword(m.ctx, found[1], next, next, client(annPhone)); !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("the link again: %v; want ErrInvalidToken", err)
		}

		m.mustComplete(t, second.Challenge, m.code(t, app.secret, 0), annPhone, "pwd", "otp")
		if n := db.Count(t, "SELECT COUNT(*) FROM device_sessions WHERE revoked_at IS NULL"); n != 1 {
			t.Fatalf("%d live sessions after the second step, want 1", n)
		}
		if _, err := m.svc.SignIn(m.ctx, ann, next, client(annPhone)); err == nil {
			t.Fatal("the new password signs in without the second step")
		}
	})
}

// TestSecondFactorContextCancelled: a second step whose request went away changes nothing.
func TestSecondFactorContextCancelled(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		m := newMFAEnv(t, db)
		app := m.enrol(t, m.principal(t, m.laptop.AccessToken), "Phone")
		challenge := m.startSignIn(t, ann, annPhone)
		ctx, cancel := context.WithCancel(m.ctx)
		cancel()
		if issued, err := m.svc.CompleteSecondFactor(ctx, challenge, app.codes[0], client(annPhone)); err == nil || issued != nil {
			t.Fatalf("a cancelled request: %+v, %v", issued, err)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM recovery_codes WHERE used_at IS NOT NULL"); n != 0 {
			t.Fatal("a cancelled request used a recovery code")
		}
		m.mustComplete(t, challenge, app.codes[0], annPhone, "pwd", "rec")
	})
}

// FuzzCompleteSecondFactor: whatever challenge and code arrive at the second step, the answer is
// ErrInvalidToken or ErrInvalidCode, nothing panics, and no session starts nor any code is used.
// "{live}" in the challenge stands for a real open challenge, so that near misses of it and codes
// against it are tried; each run gets a fresh one.
func FuzzCompleteSecondFactor(f *testing.F) {
	e := newFuzzEnv(f)
	e.clock.Set(time.Unix(e.clock.Now().Unix()/30*30+10, 0).UTC())
	u := e.user(f, ann)
	laptop := e.signIn(f, ann, "laptop-0001")
	p, err := e.svc.Verify(e.ctx, laptop.AccessToken)
	if err != nil {
		f.Fatal(err)
	}
	en, err := e.svc.BeginTOTP(e.ctx, p)
	if err != nil {
		f.Fatal(err)
	}
	now, _ := auth.TOTPCode(en.Secret, e.clock.Now())
	codes, err := e.svc.ConfirmTOTP(e.ctx, p, en.FactorID, "Phone", now, testIP)
	if err != nil {
		f.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	for _, seed := range []struct{ challenge, code string }{
		{"{live}", "000000"}, {"{live}", ""}, {"{live}", now}, {"{live}", codes[0][:len(codes[0])-1]},
		{"{live}", strings.ToUpper(codes[0]) + "x"}, {"{live}", "１２３４５６"}, {"{live}", "12345\x00"},
		{"{live}x", "123456"}, {"", "123456"}, {"ghc_", codes[1]}, {"ghc_" + strings.Repeat("A", 43), "123456"},
		{"ghc_" + strings.Repeat("_", 43), codes[2]}, {"ghc_\xff\xfe", "\xff"}, {strings.Repeat("ghc_", 100), strings.Repeat("a", 100)},
	} {
		f.Add(seed.challenge, seed.code)
	}
	f.Fuzz(func(t *testing.T, challenge, code string) {
		if code == now || slices.ContainsFunc(codes, func(c string) bool {
			return strings.EqualFold(strings.NewReplacer("-", "", " ", "", "\t", "").Replace(code), strings.ReplaceAll(c, "-", ""))
		}) {
			return // a right code (only a seed could hold one)
		}
		if strings.Contains(challenge, "{live}") {
			_, err := e.svc.SignIn(e.ctx, ann, testPassword, auth.Client{DeviceID: "phone-0001", IP: testIP})
			var second *auth.SecondFactorRequired
			if !errors.As(err, &second) {
				t.Fatalf("sign in: %v", err)
			}
			challenge = strings.Replace(challenge, "{live}", second.Challenge, 1)
		}
		sessions := e.db.Count(t, "SELECT COUNT(*) FROM device_sessions")
		issued, err := e.svc.CompleteSecondFactor(e.ctx, challenge, code, auth.Client{DeviceID: "phone-0001", IP: testIP})
		if issued != nil || (!errors.Is(err, auth.ErrInvalidToken) && !errors.Is(err, auth.ErrInvalidCode)) {
			t.Fatalf("CompleteSecondFactor(%q, %q): %+v, %v; want ErrInvalidToken or ErrInvalidCode", challenge, code, issued, err)
		}
		if e.db.Count(t, "SELECT COUNT(*) FROM device_sessions") != sessions ||
			e.db.Count(t, "SELECT COUNT(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL", u.ID) != auth.RecoveryCodeCount {
			t.Fatal("a refused second step changed the sessions or the recovery codes")
		}
	})
}
