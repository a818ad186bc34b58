package auth_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"gatehouse/services/auth/passkeytest"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/models/testdb"
	"gatehouse/services/auth"
	"gatehouse/services/clock"
)

// The passkey rules, on every database: a passkey is added on a recently authenticated session,
// signs in alone (amr hwk), completes a password sign-in (amr pwd hwk) and confirms a sensitive
// action; an answer that does not verify is ErrPasskeyRefused and changes nothing.

const passkeyOrigin = "http://localhost:8080"

// passkeyEnv is a service whose base URL is on localhost (browsers refuse passkeys on an IP
// address), and the person's authenticator.
type passkeyEnv struct {
	*env
	key     *passkeytest.Authenticator
	devices int                                // sign-ins so far, each on its own device
	keys    map[string]*passkeytest.Credential // email → the first passkey registered, for the second step
}

func newPasskeyEnv(t *testing.T, db *testdb.DB) *passkeyEnv {
	t.Helper()
	c := clock.NewManual(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	svc := newServiceWith(t, db, c, t.TempDir(), func(cfg *auth.Config, _ *auth.Deps) { cfg.Issuer = passkeyOrigin })
	e := &env{db: db, svc: svc, clock: c, ctx: t.Context()}
	return &passkeyEnv{env: e, key: &passkeytest.Authenticator{Origin: passkeyOrigin, RPID: "localhost"}, keys: map[string]*passkeytest.Credential{}}
}

var passkeyClient = auth.Client{DeviceID: "passkey-device", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0", IP: "192.0.2.9"}

// principal signs email in on a new device (with the password, and the passkey as the second
// step once the account has one) and returns who its access token speaks for.
func (e *passkeyEnv) principal(t *testing.T, email string) *auth.Principal {
	t.Helper()
	e.devices++
	client := passkeyClient
	client.DeviceID = fmt.Sprintf("device-%d", e.devices)
	issued, err := e.svc.SignIn(e.ctx, email, testPassword, client)
	var required *auth.SecondFactorRequired
	if errors.As(err, &required) {
		var ceremony *auth.PasskeyCeremony
		ceremony, err = e.svc.BeginSecondFactorPasskey(e.ctx, required.Challenge)
		if err != nil {
			t.Fatalf("begin second step: %v", err)
		}
		issued, err = e.svc.CompleteSecondFactorWithPasskey(e.ctx, required.Challenge, e.key.Get(t, ceremony.Options, e.keys[email]), client)
	}
	if err != nil {
		t.Fatalf("sign in %s: %v", email, err)
	}
	p, err := e.svc.Verify(e.ctx, issued.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// storedCounter is the signature counter the server holds for a passkey.
func (e *passkeyEnv) storedCounter(t *testing.T, cred *passkeytest.Credential) uint32 {
	t.Helper()
	f, err := e.db.Store.FactorByCredentialID(e.ctx, cred.ID)
	if err != nil {
		t.Fatal(err)
	}
	var stored struct {
		Authenticator struct {
			SignCount uint32 `json:"signCount"`
		} `json:"authenticator"`
	}
	if err := json.Unmarshal([]byte(f.Credential), &stored); err != nil {
		t.Fatal(err)
	}
	return stored.Authenticator.SignCount
}

// register adds a new passkey named name to p's account and returns it with the recovery codes.
func (e *passkeyEnv) register(t *testing.T, p *auth.Principal, name string) (*passkeytest.Credential, []string) {
	t.Helper()
	ceremony, err := e.svc.BeginPasskeyRegistration(e.ctx, p, name)
	if err != nil {
		t.Fatalf("begin registration: %v", err)
	}
	answer, cred := e.key.Create(t, ceremony.Options)
	codes, err := e.svc.FinishPasskeyRegistration(e.ctx, p, ceremony.ID, name, answer, "192.0.2.9")
	if err != nil {
		t.Fatalf("finish registration: %v", err)
	}
	if e.keys[p.Email] == nil {
		e.keys[p.Email] = cred
	}
	return cred, codes
}

// beginLogin begins a sign-in with a passkey alone.
func (e *passkeyEnv) beginLogin(t *testing.T) *auth.PasskeyCeremony {
	t.Helper()
	ceremony, err := e.svc.BeginPasskeyLogin(e.ctx)
	if err != nil {
		t.Fatalf("begin passkey sign-in: %v", err)
	}
	return ceremony
}

// amrOfAccess reads the amr claim of an access token.
func amrOfAccess(t *testing.T, token string) []string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		AMR []string `json:"amr"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	return claims.AMR
}

// passkeyState is what a refused answer must leave as it was: every passkey (its credential with
// the signature counter, and when it was last used), the device sessions, and whether each
// challenge was used. Failed-attempt counters and security events are not part of it.
func passkeyState(t *testing.T, db *testdb.DB) string {
	t.Helper()
	var b strings.Builder
	var factors []struct {
		ID, Name, Credential string
		LastUsedAt           *time.Time
	}
	if err := db.Store.DB().Raw(`SELECT id, name, credential, last_used_at FROM factors ORDER BY id`).Scan(&factors).Error; err != nil {
		t.Fatal(err)
	}
	for _, f := range factors {
		fmt.Fprintf(&b, "factor %s %s %v %s\n", f.ID, f.Name, f.LastUsedAt, f.Credential)
	}
	var sessions []struct {
		ID, AMR   string
		RevokedAt *time.Time
	}
	if err := db.Store.DB().Raw(`SELECT id, amr, revoked_at FROM device_sessions ORDER BY id`).Scan(&sessions).Error; err != nil {
		t.Fatal(err)
	}
	for _, s := range sessions {
		fmt.Fprintf(&b, "session %s %s %v\n", s.ID, s.AMR, s.RevokedAt)
	}
	var challenges []struct {
		Purpose string
		UsedAt  *time.Time
	}
	if err := db.Store.DB().Raw(`SELECT purpose, used_at FROM auth_challenges ORDER BY created_at, purpose, used_at`).Scan(&challenges).Error; err != nil {
		t.Fatal(err)
	}
	for _, c := range challenges {
		fmt.Fprintf(&b, "challenge %s %v\n", c.Purpose, c.UsedAt)
	}
	var codes int64
	if err := db.Store.DB().Raw(`SELECT COUNT(*) FROM recovery_codes`).Scan(&codes).Error; err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "recovery codes %d\n", codes)
	return b.String()
}

func TestPasskeyRegisterThenSignInAlone(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		e := newPasskeyEnv(t, db)
		e.user(t, "ann@example.com")
		p := e.principal(t, "ann@example.com")

		cred, codes := e.register(t, p, "Laptop")
		if len(codes) != auth.RecoveryCodeCount {
			t.Fatalf("first factor came with %d recovery codes, want %d", len(codes), auth.RecoveryCodeCount)
		}
		if !slices.Equal(cred.UserHandle, []byte(p.UserID)) {
			t.Fatalf("user handle %q, want the user's id %q", cred.UserHandle, p.UserID)
		}
		e.clock.Advance(time.Second)
		_, more := e.register(t, p, "Phone")
		if more != nil {
			t.Fatalf("a second passkey came with recovery codes: %v", more)
		}
		sec, err := e.svc.SecurityOf(e.ctx, p.UserID)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range sec.Factors {
			names = append(names, f.Kind+":"+f.Name)
		}
		if !slices.Equal(names, []string{"passkey:Laptop", "passkey:Phone"}) {
			t.Fatalf("factors %v, want both passkeys", names)
		}

		ceremony := e.beginLogin(t)
		issued, err := e.svc.SignInWithPasskey(e.ctx, ceremony.ID, e.key.Get(t, ceremony.Options, cred), passkeyClient)
		if err != nil {
			t.Fatalf("sign in with the passkey: %v", err)
		}
		if issued.UserID != p.UserID {
			t.Fatalf("signed in %s, want %s", issued.UserID, p.UserID)
		}
		if amr := amrOfAccess(t, issued.AccessToken); !slices.Equal(amr, []string{"hwk"}) {
			t.Fatalf("amr %v, want [hwk]", amr)
		}
		events, err := e.svc.Events(e.ctx, p.UserID, 20)
		if err != nil {
			t.Fatal(err)
		}
		if events[0].Kind != auth.EventSignedIn || events[0].Detail != "hwk" || events[0].SessionID != issued.SessionID {
			t.Fatalf("latest event %+v, want the passkey sign-in", events[0])
		}
		sec, _ = e.svc.SecurityOf(e.ctx, p.UserID)
		if sec.Factors[0].LastUsedAt == nil || sec.Factors[1].LastUsedAt != nil {
			t.Fatalf("last used: %v, %v; want the laptop's passkey only", sec.Factors[0].LastUsedAt, sec.Factors[1].LastUsedAt)
		}

		// The counter moved on: the next sign-in with the same passkey works too.
		e.clock.Advance(time.Minute)
		ceremony = e.beginLogin(t)
		if _, err := e.svc.SignInWithPasskey(e.ctx, ceremony.ID, e.key.Get(t, ceremony.Options, cred), passkeyClient); err != nil {
			t.Fatalf("second sign-in with the passkey: %v", err)
		}
	})
}

func TestPasskeyAsSecondStep(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		e := newPasskeyEnv(t, db)
		e.user(t, "ann@example.com")
		p := e.principal(t, "ann@example.com")
		cred, _ := e.register(t, p, "Laptop")

		_, err := e.svc.SignIn(e.ctx, "ann@example.com", testPassword, passkeyClient)
		var required *auth.SecondFactorRequired
		if !errors.As(err, &required) {
			t.Fatalf("password sign-in: %v, want the second step", err)
		}
		pending, err := e.svc.PendingSecondStep(e.ctx, required.Challenge)
		if err != nil || !pending.Passkeys {
			t.Fatalf("pending second step %+v, %v; want one offering passkeys", pending, err)
		}
		ceremony, err := e.svc.BeginSecondFactorPasskey(e.ctx, required.Challenge)
		if err != nil {
			t.Fatalf("begin second step: %v", err)
		}
		if ceremony.ID != "" {
			t.Fatalf("the second step's ceremony has its own id %q; it is the sign-in's challenge", ceremony.ID)
		}
		var opts struct {
			AllowCredentials []struct{ ID string } `json:"allowCredentials"`
		}
		if err := json.Unmarshal(ceremony.Options, &opts); err != nil || len(opts.AllowCredentials) != 1 ||
			opts.AllowCredentials[0].ID != b64.EncodeToString(cred.ID) {
			t.Fatalf("options allow %+v, want Ann's passkey only", opts.AllowCredentials)
		}
		issued, err := e.svc.CompleteSecondFactorWithPasskey(e.ctx, required.Challenge, e.key.Get(t, ceremony.Options, cred), passkeyClient)
		if err != nil {
			t.Fatalf("complete with the passkey: %v", err)
		}
		if amr := amrOfAccess(t, issued.AccessToken); !slices.Equal(amr, []string{"pwd", "hwk"}) {
			t.Fatalf("amr %v, want [pwd hwk]", amr)
		}

		// The sign-in's challenge is used up: the same step cannot start a second session.
		if _, err := e.svc.BeginSecondFactorPasskey(e.ctx, required.Challenge); !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("begin on a used challenge: %v, want ErrInvalidToken", err)
		}
		if _, err := e.svc.CompleteSecondFactorWithPasskey(e.ctx, required.Challenge, e.key.Get(t, ceremony.Options, cred), passkeyClient); !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("complete a used challenge: %v, want ErrInvalidToken", err)
		}
	})
}

func TestPasskeyReauthentication(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		e := newPasskeyEnv(t, db)
		e.user(t, "ann@example.com")
		e.user(t, "bob@example.com")
		p := e.principal(t, "ann@example.com")
		cred, _ := e.register(t, p, "Laptop")

		e.clock.Advance(auth.SecurityReauthWindow + time.Minute)
		stale := e.asNow(t, p)
		if err := e.svc.RequireSecurityReauth(stale); !errors.Is(err, auth.ErrReauthRequired) {
			t.Fatalf("after the window: %v, want ErrReauthRequired", err)
		}
		ceremony, err := e.svc.BeginPasskeyReauth(e.ctx, stale)
		if err != nil {
			t.Fatalf("begin reauth: %v", err)
		}
		if err := e.svc.ConfirmWithPasskey(e.ctx, stale, ceremony.ID, e.key.Get(t, ceremony.Options, cred), "192.0.2.9"); err != nil {
			t.Fatalf("confirm with the passkey: %v", err)
		}
		fresh := e.asNow(t, p)
		if !fresh.AuthenticatedAt.Equal(e.clock.Now()) {
			t.Fatalf("authenticated at %v, want now (%v)", fresh.AuthenticatedAt, e.clock.Now())
		}
		if err := e.svc.RequireSecurityReauth(fresh); err != nil {
			t.Fatalf("after the passkey: %v, want a recent authentication", err)
		}
		// Single-use: the same ceremony does not confirm twice.
		if err := e.svc.ConfirmWithPasskey(e.ctx, stale, ceremony.ID, e.key.Get(t, ceremony.Options, cred), "192.0.2.9"); !errors.Is(err, auth.ErrPasskeyRefused) {
			t.Fatalf("a used ceremony: %v, want ErrPasskeyRefused", err)
		}

		// An account without a passkey has nothing to confirm with.
		bob := e.principal(t, "bob@example.com")
		if _, err := e.svc.BeginPasskeyReauth(e.ctx, bob); !errors.Is(err, auth.ErrNotFound) {
			t.Fatalf("reauth options without a passkey: %v, want ErrNotFound", err)
		}
	})
}

// asNow is p with the time its session last authenticated as the database holds it now.
func (e *passkeyEnv) asNow(t *testing.T, p *auth.Principal) *auth.Principal {
	t.Helper()
	d, err := e.db.Store.SessionByID(e.ctx, p.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	now := *p
	now.AuthenticatedAt = d.AuthenticatedAt
	return &now
}

func TestPasskeyRegistrationNeedsRecentAuthentication(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		e := newPasskeyEnv(t, db)
		e.user(t, "ann@example.com")
		p := e.principal(t, "ann@example.com")
		ceremony, err := e.svc.BeginPasskeyRegistration(e.ctx, p, "Laptop")
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := e.key.Create(t, ceremony.Options)
		before := passkeyState(t, db)
		e.clock.Advance(auth.SecurityReauthWindow + time.Second)
		if _, err := e.svc.FinishPasskeyRegistration(e.ctx, p, ceremony.ID, "Laptop", answer, ""); !errors.Is(err, auth.ErrReauthRequired) {
			t.Fatalf("finish after the window: %v, want ErrReauthRequired", err)
		}
		if _, err := e.svc.BeginPasskeyRegistration(e.ctx, p, "Laptop"); !errors.Is(err, auth.ErrReauthRequired) {
			t.Fatalf("begin after the window: %v, want ErrReauthRequired", err)
		}
		if after := passkeyState(t, db); after != before {
			t.Fatalf("state changed:\n%s\nwant\n%s", after, before)
		}
	})
}

func TestPasskeyRegistrationRefusals(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		e := newPasskeyEnv(t, db)
		e.user(t, "ann@example.com")
		e.user(t, "bob@example.com")
		ann := e.principal(t, "ann@example.com")
		bob := e.principal(t, "bob@example.com")
		annKey, _ := e.register(t, ann, "Laptop")

		begin := func(t *testing.T, p *auth.Principal) *auth.PasskeyCeremony {
			t.Helper()
			ceremony, err := e.svc.BeginPasskeyRegistration(e.ctx, p, "Key")
			if err != nil {
				t.Fatal(err)
			}
			return ceremony
		}
		var excluded struct {
			Exclude []struct{ ID string } `json:"excludeCredentials"`
			Select  struct {
				ResidentKey string `json:"residentKey"`
				UV          string `json:"userVerification"`
			} `json:"authenticatorSelection"`
		}
		if err := json.Unmarshal(begin(t, ann).Options, &excluded); err != nil {
			t.Fatal(err)
		}
		if len(excluded.Exclude) != 1 || excluded.Exclude[0].ID != b64.EncodeToString(annKey.ID) {
			t.Fatalf("excluded %+v, want Ann's passkey", excluded.Exclude)
		}
		if excluded.Select.ResidentKey != "required" || excluded.Select.UV != "preferred" {
			t.Fatalf("authenticator selection %+v, want a discoverable credential, user verification preferred", excluded.Select)
		}

		cases := []struct {
			name   string
			answer func(t *testing.T) (p *auth.Principal, ceremony string, answer []byte)
			want   error
		}{
			{"the same credential id twice", func(t *testing.T) (*auth.Principal, string, []byte) {
				c := begin(t, ann)
				return ann, c.ID, e.key.Attest(t, c.Options, &passkeytest.Credential{ID: annKey.ID, Key: annKey.Key})
			}, auth.ErrPasskeyRefused},
			{"another user's credential id", func(t *testing.T) (*auth.Principal, string, []byte) {
				c := begin(t, bob)
				return bob, c.ID, e.key.Attest(t, c.Options, &passkeytest.Credential{ID: annKey.ID, Key: annKey.Key})
			}, auth.ErrPasskeyRefused},
			{"wrong origin", func(t *testing.T) (*auth.Principal, string, []byte) {
				c := begin(t, ann)
				evil := &passkeytest.Authenticator{Origin: "http://evil.example:8080", RPID: "localhost"}
				a, _ := evil.Create(t, c.Options)
				return ann, c.ID, a
			}, auth.ErrPasskeyRefused},
			{"wrong RP ID hash", func(t *testing.T) (*auth.Principal, string, []byte) {
				c := begin(t, ann)
				evil := &passkeytest.Authenticator{Origin: passkeyOrigin, RPID: "evil.example"}
				a, _ := evil.Create(t, c.Options)
				return ann, c.ID, a
			}, auth.ErrPasskeyRefused},
			{"wrong challenge", func(t *testing.T) (*auth.Principal, string, []byte) {
				c := begin(t, ann)
				a, _ := e.key.Create(t, passkeytest.WithChallenge(t, c.Options))
				return ann, c.ID, a
			}, auth.ErrPasskeyRefused},
			{"another session's ceremony", func(t *testing.T) (*auth.Principal, string, []byte) {
				c := begin(t, ann)
				other := e.principal(t, "ann@example.com")
				a, _ := e.key.Create(t, c.Options)
				return other, c.ID, a
			}, auth.ErrPasskeyRefused},
			{"another user's ceremony", func(t *testing.T) (*auth.Principal, string, []byte) {
				c := begin(t, ann)
				a, _ := e.key.Create(t, c.Options)
				return bob, c.ID, a
			}, auth.ErrPasskeyRefused},
			{"a sign-in ceremony", func(t *testing.T) (*auth.Principal, string, []byte) {
				c := begin(t, ann)
				login := e.beginLogin(t)
				a, _ := e.key.Create(t, c.Options)
				return ann, login.ID, a
			}, auth.ErrPasskeyRefused},
			{"malformed", func(t *testing.T) (*auth.Principal, string, []byte) {
				c := begin(t, ann)
				return ann, c.ID, []byte(`{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"attestationObject":"oA","clientDataJSON":"e30"}}`)
			}, auth.ErrPasskeyRefused},
			{"not JSON", func(t *testing.T) (*auth.Principal, string, []byte) {
				c := begin(t, ann)
				return ann, c.ID, []byte("garbage")
			}, auth.ErrPasskeyRefused},
			{"no ceremony", func(t *testing.T) (*auth.Principal, string, []byte) {
				c := begin(t, ann)
				a, _ := e.key.Create(t, c.Options)
				return ann, "ghc_forged", a
			}, auth.ErrPasskeyRefused},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				p, ceremony, answer := tc.answer(t)
				before := passkeyState(t, db)
				_, err := e.svc.FinishPasskeyRegistration(e.ctx, p, ceremony, "Key", answer, "")
				if !errors.Is(err, tc.want) {
					t.Fatalf("finish: %v, want %v", err, tc.want)
				}
				if after := passkeyState(t, db); after != before {
					t.Fatalf("a refused registration changed the state:\n%s\nwant\n%s", after, before)
				}
			})
		}

		t.Run("expired", func(t *testing.T) {
			c := begin(t, ann)
			a, _ := e.key.Create(t, c.Options)
			e.clock.Advance(auth.ChallengeTTL + time.Second)
			p := e.principal(t, "ann@example.com")
			if _, err := e.svc.FinishPasskeyRegistration(e.ctx, p, c.ID, "Key", a, ""); !errors.Is(err, auth.ErrPasskeyRefused) {
				t.Fatalf("finish after %v: %v, want ErrPasskeyRefused", auth.ChallengeTTL, err)
			}
		})

		t.Run("a name too long", func(t *testing.T) {
			_, err := e.svc.BeginPasskeyRegistration(e.ctx, e.principal(t, "ann@example.com"), strings.Repeat("x", 65))
			var invalid *auth.ValidationError
			if !errors.As(err, &invalid) || invalid.Field != "name" {
				t.Fatalf("begin with a long name: %v, want a ValidationError on name", err)
			}
		})
	})
}

func TestPasskeySignInRefusals(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		e := newPasskeyEnv(t, db)
		e.user(t, "ann@example.com")
		e.user(t, "bob@example.com")
		annKey, _ := e.register(t, e.principal(t, "ann@example.com"), "Laptop")
		bobKey, _ := e.register(t, e.principal(t, "bob@example.com"), "Phone")
		// One sign-in each, so that each counter is past zero.
		for _, k := range []*passkeytest.Credential{annKey, bobKey} {
			c := e.beginLogin(t)
			if _, err := e.svc.SignInWithPasskey(e.ctx, c.ID, e.key.Get(t, c.Options, k), passkeyClient); err != nil {
				t.Fatal(err)
			}
		}

		cases := []struct {
			name   string
			answer func(t *testing.T) (ceremony string, answer []byte)
		}{
			{"wrong origin", func(t *testing.T) (string, []byte) {
				c := e.beginLogin(t)
				evil := &passkeytest.Authenticator{Origin: "http://evil.example:8080", RPID: "localhost"}
				return c.ID, evil.Get(t, c.Options, annKey)
			}},
			{"wrong RP ID hash", func(t *testing.T) (string, []byte) {
				c := e.beginLogin(t)
				evil := &passkeytest.Authenticator{Origin: passkeyOrigin, RPID: "evil.example"}
				return c.ID, evil.Get(t, c.Options, annKey)
			}},
			{"wrong challenge", func(t *testing.T) (string, []byte) {
				c := e.beginLogin(t)
				return c.ID, e.key.Get(t, passkeytest.WithChallenge(t, c.Options), annKey)
			}},
			{"a ceremony never begun", func(t *testing.T) (string, []byte) {
				c := e.beginLogin(t)
				forged := "ghc_" + b64.EncodeToString(make([]byte, 32))
				return forged, e.key.Get(t, c.Options, annKey)
			}},
			{"a malformed ceremony id", func(t *testing.T) (string, []byte) {
				c := e.beginLogin(t)
				return "'; DROP TABLE users; --", e.key.Get(t, c.Options, annKey)
			}},
			{"a used ceremony", func(t *testing.T) (string, []byte) {
				c := e.beginLogin(t)
				if _, err := e.svc.SignInWithPasskey(e.ctx, c.ID, e.key.Get(t, c.Options, annKey), passkeyClient); err != nil {
					t.Fatal(err)
				}
				return c.ID, e.key.Get(t, c.Options, annKey)
			}},
			{"a replayed signature counter", func(t *testing.T) (string, []byte) {
				c := e.beginLogin(t)
				annKey.Counter = e.storedCounter(t, annKey) - 1 // signs the counter stored already
				return c.ID, e.key.Get(t, c.Options, annKey)
			}},
			{"a counter gone backwards", func(t *testing.T) (string, []byte) {
				c := e.beginLogin(t)
				stored := e.storedCounter(t, annKey)
				annKey.Counter = stored - 3
				answer := e.key.Get(t, c.Options, annKey)
				annKey.Counter = stored
				return c.ID, answer
			}},
			{"another user's credential under Ann's user handle", func(t *testing.T) (string, []byte) {
				c := e.beginLogin(t)
				forged := *bobKey
				forged.UserHandle = annKey.UserHandle
				return c.ID, e.key.Get(t, c.Options, &forged)
			}},
			{"Ann's credential signed by another key", func(t *testing.T) (string, []byte) {
				c := e.beginLogin(t)
				forged := *annKey
				forged.Key = bobKey.Key
				return c.ID, e.key.Get(t, c.Options, &forged)
			}},
			{"an unknown credential", func(t *testing.T) (string, []byte) {
				c := e.beginLogin(t)
				_, stranger := e.key.Create(t, []byte(`{"challenge":"AAAAAAAAAAAAAAAAAAAAAA","user":{"id":"`+b64.EncodeToString(annKey.UserHandle)+`"}}`))
				return c.ID, e.key.Get(t, c.Options, stranger)
			}},
			{"no user handle", func(t *testing.T) (string, []byte) {
				c := e.beginLogin(t)
				forged := *annKey
				forged.UserHandle = nil
				return c.ID, e.key.Get(t, c.Options, &forged)
			}},
			{"a registration ceremony", func(t *testing.T) (string, []byte) {
				reg, err := e.svc.BeginPasskeyRegistration(e.ctx, e.principal(t, "ann@example.com"), "")
				if err != nil {
					t.Fatal(err)
				}
				return reg.ID, e.key.Get(t, reg.Options, annKey)
			}},
			{"empty", func(t *testing.T) (string, []byte) { return e.beginLogin(t).ID, nil }},
			{"not JSON", func(t *testing.T) (string, []byte) { return e.beginLogin(t).ID, []byte("{not json") }},
			{"a JSON shape of something else", func(t *testing.T) (string, []byte) {
				return e.beginLogin(t).ID, []byte(`{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"authenticatorData":"AA","clientDataJSON":"e30","signature":"AA"}}`)
			}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ceremony, answer := tc.answer(t)
				before := passkeyState(t, db)
				issued, err := e.svc.SignInWithPasskey(e.ctx, ceremony, answer, passkeyClient)
				if !errors.Is(err, auth.ErrPasskeyRefused) || issued != nil {
					t.Fatalf("sign in: %+v, %v; want ErrPasskeyRefused", issued, err)
				}
				if after := passkeyState(t, db); after != before {
					t.Fatalf("a refused sign-in changed the state:\n%s\nwant\n%s", after, before)
				}
			})
		}

		t.Run("expired", func(t *testing.T) {
			c := e.beginLogin(t)
			answer := e.key.Get(t, c.Options, annKey)
			e.clock.Advance(auth.ChallengeTTL + time.Second)
			before := passkeyState(t, db)
			if _, err := e.svc.SignInWithPasskey(e.ctx, c.ID, answer, passkeyClient); !errors.Is(err, auth.ErrPasskeyRefused) {
				t.Fatalf("after %v: %v, want ErrPasskeyRefused", auth.ChallengeTTL, err)
			}
			if after := passkeyState(t, db); after != before {
				t.Fatalf("state changed:\n%s\nwant\n%s", after, before)
			}
		})

		t.Run("a disabled account", func(t *testing.T) {
			if err := e.svc.DisableUser(e.ctx, "bob@example.com"); err != nil {
				t.Fatal(err)
			}
			c := e.beginLogin(t)
			if _, err := e.svc.SignInWithPasskey(e.ctx, c.ID, e.key.Get(t, c.Options, bobKey), passkeyClient); !errors.Is(err, auth.ErrPasskeyRefused) {
				t.Fatalf("disabled: %v, want ErrPasskeyRefused", err)
			}
		})

		t.Run("and the right answer still works", func(t *testing.T) {
			c := e.beginLogin(t)
			if _, err := e.svc.SignInWithPasskey(e.ctx, c.ID, e.key.Get(t, c.Options, annKey), passkeyClient); err != nil {
				t.Fatalf("after the refusals: %v", err)
			}
		})
	})
}

func TestPasskeySecondStepRefusals(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		e := newPasskeyEnv(t, db)
		e.user(t, "ann@example.com")
		e.user(t, "bob@example.com")
		annKey, _ := e.register(t, e.principal(t, "ann@example.com"), "Laptop")
		bobKey, _ := e.register(t, e.principal(t, "bob@example.com"), "Phone")

		// open starts Ann's password sign-in and its passkey ceremony.
		open := func(t *testing.T) (string, *auth.PasskeyCeremony) {
			t.Helper()
			_, err := e.svc.SignIn(e.ctx, "ann@example.com", testPassword, passkeyClient)
			var required *auth.SecondFactorRequired
			if !errors.As(err, &required) {
				t.Fatalf("password sign-in: %v", err)
			}
			c, err := e.svc.BeginSecondFactorPasskey(e.ctx, required.Challenge)
			if err != nil {
				t.Fatal(err)
			}
			return required.Challenge, c
		}
		cases := []struct {
			name   string
			answer func(t *testing.T, options []byte) []byte
		}{
			{"wrong origin", func(t *testing.T, o []byte) []byte {
				return (&passkeytest.Authenticator{Origin: "https://localhost:8080", RPID: "localhost"}).Get(t, o, annKey)
			}},
			{"wrong RP ID hash", func(t *testing.T, o []byte) []byte {
				return (&passkeytest.Authenticator{Origin: passkeyOrigin, RPID: "localhost.evil.example"}).Get(t, o, annKey)
			}},
			{"wrong challenge", func(t *testing.T, o []byte) []byte { return e.key.Get(t, passkeytest.WithChallenge(t, o), annKey) }},
			{"another user's credential", func(t *testing.T, o []byte) []byte { return e.key.Get(t, o, bobKey) }},
			{"another user's credential under Ann's user handle", func(t *testing.T, o []byte) []byte {
				forged := *bobKey
				forged.UserHandle = annKey.UserHandle
				return e.key.Get(t, o, &forged)
			}},
			{"malformed", func(t *testing.T, o []byte) []byte { return []byte(`{"id":"x"}`) }},
			{"empty", func(t *testing.T, o []byte) []byte { return []byte{} }},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				challenge, c := open(t)
				answer := tc.answer(t, c.Options)
				before := passkeyState(t, db)
				issued, err := e.svc.CompleteSecondFactorWithPasskey(e.ctx, challenge, answer, passkeyClient)
				if !errors.Is(err, auth.ErrPasskeyRefused) || issued != nil {
					t.Fatalf("complete: %+v, %v; want ErrPasskeyRefused", issued, err)
				}
				if after := passkeyState(t, db); after != before {
					t.Fatalf("a refused second step changed the state:\n%s\nwant\n%s", after, before)
				}
				// The refusal counts against the sign-in like a wrong code, and the owner sees it.
				events, err := e.svc.Events(e.ctx, string(annKey.UserHandle), 1)
				if err != nil || len(events) != 1 || events[0].Kind != auth.EventSecondFactorFailed {
					t.Fatalf("latest event %+v, %v; want second_factor_failed", events, err)
				}
			})
		}

		t.Run("a signature counter that did not move", func(t *testing.T) {
			challenge, c := open(t)
			if _, err := e.svc.CompleteSecondFactorWithPasskey(e.ctx, challenge, e.key.Get(t, c.Options, annKey), passkeyClient); err != nil {
				t.Fatal(err)
			}
			challenge, c = open(t)
			annKey.Counter = e.storedCounter(t, annKey) - 1
			before := passkeyState(t, db)
			if _, err := e.svc.CompleteSecondFactorWithPasskey(e.ctx, challenge, e.key.Get(t, c.Options, annKey), passkeyClient); !errors.Is(err, auth.ErrPasskeyRefused) {
				t.Fatalf("a replayed counter: %v, want ErrPasskeyRefused", err)
			}
			if after := passkeyState(t, db); after != before {
				t.Fatalf("state changed:\n%s\nwant\n%s", after, before)
			}
		})

		t.Run("an answer to an older ceremony of the same sign-in", func(t *testing.T) {
			challenge, old := open(t)
			if _, err := e.svc.BeginSecondFactorPasskey(e.ctx, challenge); err != nil {
				t.Fatal(err)
			}
			if _, err := e.svc.CompleteSecondFactorWithPasskey(e.ctx, challenge, e.key.Get(t, old.Options, annKey), passkeyClient); !errors.Is(err, auth.ErrPasskeyRefused) {
				t.Fatalf("an answer to a replaced ceremony: %v, want ErrPasskeyRefused", err)
			}
		})

		t.Run("another sign-in's ceremony", func(t *testing.T) {
			_, first := open(t)
			second, _ := open(t)
			if _, err := e.svc.CompleteSecondFactorWithPasskey(e.ctx, second, e.key.Get(t, first.Options, annKey), passkeyClient); !errors.Is(err, auth.ErrPasskeyRefused) {
				t.Fatalf("an answer to another sign-in's ceremony: %v, want ErrPasskeyRefused", err)
			}
		})

		t.Run("no ceremony begun", func(t *testing.T) {
			_, err := e.svc.SignIn(e.ctx, "ann@example.com", testPassword, passkeyClient)
			var required *auth.SecondFactorRequired
			if !errors.As(err, &required) {
				t.Fatal(err)
			}
			c := e.beginLogin(t)
			if _, err := e.svc.CompleteSecondFactorWithPasskey(e.ctx, required.Challenge, e.key.Get(t, c.Options, annKey), passkeyClient); !errors.Is(err, auth.ErrPasskeyRefused) {
				t.Fatalf("no ceremony: %v, want ErrPasskeyRefused", err)
			}
		})

		t.Run("expired", func(t *testing.T) {
			challenge, c := open(t)
			answer := e.key.Get(t, c.Options, annKey)
			e.clock.Advance(auth.ChallengeTTL + time.Second)
			if _, err := e.svc.CompleteSecondFactorWithPasskey(e.ctx, challenge, answer, passkeyClient); !errors.Is(err, auth.ErrInvalidToken) {
				t.Fatalf("after %v: %v, want ErrInvalidToken", auth.ChallengeTTL, err)
			}
			if _, err := e.svc.BeginSecondFactorPasskey(e.ctx, challenge); !errors.Is(err, auth.ErrInvalidToken) {
				t.Fatalf("begin after %v: %v, want ErrInvalidToken", auth.ChallengeTTL, err)
			}
		})

		t.Run("too many refusals use the sign-in up", func(t *testing.T) {
			challenge, c := open(t)
			for range auth.MaxChallengeAttempts {
				if _, err := e.svc.CompleteSecondFactorWithPasskey(e.ctx, challenge, []byte("garbage"), passkeyClient); !errors.Is(err, auth.ErrPasskeyRefused) {
					t.Fatalf("garbage: %v", err)
				}
			}
			if _, err := e.svc.CompleteSecondFactorWithPasskey(e.ctx, challenge, e.key.Get(t, c.Options, annKey), passkeyClient); !errors.Is(err, auth.ErrInvalidToken) {
				t.Fatalf("after %d refusals: %v, want ErrInvalidToken", auth.MaxChallengeAttempts, err)
			}
		})
	})
}

func TestPasskeyReauthRefusals(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		e := newPasskeyEnv(t, db)
		e.user(t, "ann@example.com")
		e.user(t, "bob@example.com")
		ann := e.principal(t, "ann@example.com")
		bob := e.principal(t, "bob@example.com")
		annKey, _ := e.register(t, ann, "Laptop")
		bobKey, _ := e.register(t, bob, "Phone")
		e.clock.Advance(auth.SecurityReauthWindow + time.Minute)
		annLaptop := e.principal(t, "ann@example.com") // a second session of Ann's

		begin := func(t *testing.T, p *auth.Principal) *auth.PasskeyCeremony {
			t.Helper()
			c, err := e.svc.BeginPasskeyReauth(e.ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		cases := []struct {
			name   string
			answer func(t *testing.T) (ceremony string, answer []byte)
		}{
			{"wrong origin", func(t *testing.T) (string, []byte) {
				c := begin(t, ann)
				return c.ID, (&passkeytest.Authenticator{Origin: "http://localhost:9999", RPID: "localhost"}).Get(t, c.Options, annKey)
			}},
			{"wrong RP ID hash", func(t *testing.T) (string, []byte) {
				c := begin(t, ann)
				return c.ID, (&passkeytest.Authenticator{Origin: passkeyOrigin, RPID: "example.com"}).Get(t, c.Options, annKey)
			}},
			{"wrong challenge", func(t *testing.T) (string, []byte) {
				c := begin(t, ann)
				return c.ID, e.key.Get(t, passkeytest.WithChallenge(t, c.Options), annKey)
			}},
			{"another user's credential", func(t *testing.T) (string, []byte) {
				c := begin(t, ann)
				return c.ID, e.key.Get(t, c.Options, bobKey)
			}},
			{"another user's ceremony", func(t *testing.T) (string, []byte) {
				c := begin(t, bob)
				return c.ID, e.key.Get(t, c.Options, bobKey)
			}},
			{"another session's ceremony", func(t *testing.T) (string, []byte) {
				c := begin(t, annLaptop)
				return c.ID, e.key.Get(t, c.Options, annKey)
			}},
			{"a replayed signature counter", func(t *testing.T) (string, []byte) {
				c := begin(t, ann)
				annKey.Counter = e.storedCounter(t, annKey) - 1
				return c.ID, e.key.Get(t, c.Options, annKey)
			}},
			{"malformed", func(t *testing.T) (string, []byte) { return begin(t, ann).ID, []byte(`[]`) }},
			{"no ceremony", func(t *testing.T) (string, []byte) {
				c := begin(t, ann)
				return "", e.key.Get(t, c.Options, annKey)
			}},
		}
		// One confirmation first, so that the counter is past zero.
		c := begin(t, ann)
		if err := e.svc.ConfirmWithPasskey(e.ctx, ann, c.ID, e.key.Get(t, c.Options, annKey), ""); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(auth.SecurityReauthWindow + time.Minute)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ceremony, answer := tc.answer(t)
				before := passkeyState(t, db)
				if err := e.svc.ConfirmWithPasskey(e.ctx, ann, ceremony, answer, ""); !errors.Is(err, auth.ErrPasskeyRefused) {
					t.Fatalf("confirm: %v, want ErrPasskeyRefused", err)
				}
				if after := passkeyState(t, db); after != before {
					t.Fatalf("a refused confirmation changed the state:\n%s\nwant\n%s", after, before)
				}
				p := e.asNow(t, ann)
				if err := e.svc.RequireSecurityReauth(p); !errors.Is(err, auth.ErrReauthRequired) {
					t.Fatalf("a refused passkey confirmed the session: %v", err)
				}
			})
		}
		t.Run("expired", func(t *testing.T) {
			c := begin(t, ann)
			answer := e.key.Get(t, c.Options, annKey)
			e.clock.Advance(auth.ChallengeTTL + time.Second)
			if err := e.svc.ConfirmWithPasskey(e.ctx, ann, c.ID, answer, ""); !errors.Is(err, auth.ErrPasskeyRefused) {
				t.Fatalf("after %v: %v, want ErrPasskeyRefused", auth.ChallengeTTL, err)
			}
		})
	})
}

func TestPasskeysNeedAHostName(t *testing.T) {
	cases := []struct {
		issuer string
		on     bool
	}{
		{"http://localhost:8080", true},
		{"https://Auth.Example.com", true},
		{"https://auth.example.com:443/", true},
		{"http://127.0.0.1:8080", false},
		{"http://[::1]:8080", false},
		{"", false},
	}
	for _, tc := range cases {
		t.Run(tc.issuer, func(t *testing.T) {
			db := testdb.SQLite(t)
			c := clock.NewManual(time.Now())
			keys, err := auth.OpenKeyRing(t.TempDir(), rand.Reader, c.Now())
			if err != nil {
				t.Fatal(err)
			}
			cfg := testConfig
			cfg.Issuer = tc.issuer
			svc := auth.New(cfg, auth.Deps{Store: db.Store, Keys: keys, Now: c.Now})
			if svc.PasskeysEnabled() != tc.on {
				t.Fatalf("passkeys on: %v, want %v", svc.PasskeysEnabled(), tc.on)
			}
			_, err = svc.BeginPasskeyLogin(t.Context())
			if tc.on && err != nil || !tc.on && !errors.Is(err, auth.ErrNotFound) {
				t.Fatalf("begin: %v", err)
			}
		})
	}
}

func TestPasskeySignInWaitsForAVerifiedAddress(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		e := newPasskeyEnv(t, db)
		e.user(t, "ann@example.com")
		cred, _ := e.register(t, e.principal(t, "ann@example.com"), "Laptop")

		// The operator turns verification on: a passkey does not sign an unverified address in.
		keys, err := auth.OpenKeyRing(t.TempDir(), rand.Reader, e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		cfg := testConfig
		cfg.Issuer, cfg.EmailVerification = passkeyOrigin, auth.VerificationRequired
		strict := auth.New(cfg, auth.Deps{Store: db.Store, Keys: keys, Now: e.clock.Now})
		ceremony, err := strict.BeginPasskeyLogin(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		before := passkeyState(t, db)
		if _, err := strict.SignInWithPasskey(e.ctx, ceremony.ID, e.key.Get(t, ceremony.Options, cred), passkeyClient); !errors.Is(err, auth.ErrEmailNotVerified) {
			t.Fatalf("an unverified address: %v, want ErrEmailNotVerified", err)
		}
		if after := passkeyState(t, db); after != before {
			t.Fatalf("state changed:\n%s\nwant\n%s", after, before)
		}
	})
}

var b64 = base64.RawURLEncoding
