package models_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"gatehouse/models"
	"gatehouse/models/testdb"
)

// The passkey queries, on every database.

func passkeyFactor(id, userID string, credentialID []byte, created time.Time, confirmed bool) *models.Factor {
	f := &models.Factor{ID: id, UserID: userID, Kind: models.FactorPasskey, Name: id, CredentialID: credentialID,
		Credential: `{"id":"` + id + `"}`, CreatedAt: created}
	if confirmed {
		f.ConfirmedAt = &created
	}
	return f
}

func TestPasskeysListsAUsersConfirmedPasskeysOnly(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		createUser(t, db, "ann")
		createUser(t, db, "bob")
		for _, f := range []*models.Factor{
			passkeyFactor("ann-phone", "ann", []byte("cred-1"), now.Add(time.Minute), true),
			passkeyFactor("ann-laptop", "ann", []byte("cred-2"), now, true),
			passkeyFactor("ann-pending", "ann", []byte("cred-3"), now, false),
			passkeyFactor("bob-key", "bob", []byte("cred-4"), now, true),
			{ID: "ann-totp", UserID: "ann", Kind: models.FactorTOTP, Name: "App", Secret: []byte("sealed"), CreatedAt: now, ConfirmedAt: &now},
		} {
			if err := db.Store.CreateFactor(ctx, f); err != nil {
				t.Fatalf("create %s: %v", f.ID, err)
			}
		}
		list, err := db.Store.Passkeys(ctx, "ann")
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, f := range list {
			ids = append(ids, f.ID)
		}
		if !slices.Equal(ids, []string{"ann-laptop", "ann-phone"}) {
			t.Fatalf("Ann's passkeys %v, want her two confirmed ones, oldest first", ids)
		}
		if string(list[0].CredentialID) != "cred-2" || list[0].Credential != `{"id":"ann-laptop"}` {
			t.Fatalf("passkey read back as %+v", list[0])
		}

		// A credential id is one passkey, whoever's it is.
		err = db.Store.CreateFactor(ctx, passkeyFactor("bob-copy", "bob", []byte("cred-2"), now, true))
		if !errors.Is(err, models.ErrConflict) {
			t.Fatalf("a second passkey with Ann's credential id: %v, want ErrConflict", err)
		}
	})
}

func TestSetChallengeWebAuthnOnlyOnAnOpenChallengeOfItsPurpose(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		createUser(t, db, "ann")
		ann := "ann"
		open := func(id, purpose string, expires time.Time) []byte {
			t.Helper()
			c := &models.AuthChallenge{IDHash: tokenHash(id), Purpose: purpose, UserID: &ann, CreatedAt: now, ExpiresAt: expires}
			if err := db.Store.CreateChallenge(ctx, c); err != nil {
				t.Fatal(err)
			}
			return c.IDHash
		}
		webauthnOf := func(hash []byte, purpose string) string {
			t.Helper()
			c, err := db.Store.OpenChallenge(ctx, hash, purpose, 5, now.Add(-time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			return c.WebAuthn
		}

		live := open("live", models.ChallengeSecondFactor, now.Add(5*time.Minute))
		if err := db.Store.SetChallengeWebAuthn(ctx, live, models.ChallengeSecondFactor, `{"challenge":"one"}`, 5, now); err != nil {
			t.Fatal(err)
		}
		if err := db.Store.SetChallengeWebAuthn(ctx, live, models.ChallengeSecondFactor, `{"challenge":"two"}`, 5, now); err != nil {
			t.Fatal(err)
		}
		if got := webauthnOf(live, models.ChallengeSecondFactor); got != `{"challenge":"two"}` {
			t.Fatalf("webauthn %q, want the newer ceremony", got)
		}

		cases := map[string]func() ([]byte, string){
			"another purpose": func() ([]byte, string) { return live, models.ChallengePasskeyLogin },
			"unknown":         func() ([]byte, string) { return tokenHash("nobody"), models.ChallengeSecondFactor },
			"expired": func() ([]byte, string) {
				return open("expired", models.ChallengeSecondFactor, now), models.ChallengeSecondFactor
			},
			"used": func() ([]byte, string) {
				h := open("used", models.ChallengeSecondFactor, now.Add(time.Minute))
				if err := db.Store.UseChallenge(ctx, h, 5, now); err != nil {
					t.Fatal(err)
				}
				return h, models.ChallengeSecondFactor
			},
			"out of attempts": func() ([]byte, string) {
				h := open("tried", models.ChallengeSecondFactor, now.Add(time.Minute))
				for range 5 {
					if _, err := db.Store.FailChallenge(ctx, h); err != nil {
						t.Fatal(err)
					}
				}
				return h, models.ChallengeSecondFactor
			},
		}
		for name, c := range cases {
			t.Run(name, func(t *testing.T) {
				hash, purpose := c()
				if err := db.Store.SetChallengeWebAuthn(ctx, hash, purpose, `{"challenge":"late"}`, 5, now); !errors.Is(err, models.ErrNotFound) {
					t.Fatalf("set: %v, want ErrNotFound", err)
				}
			})
		}
		if got := webauthnOf(live, models.ChallengeSecondFactor); got != `{"challenge":"two"}` {
			t.Fatalf("webauthn %q after the refusals, want it unchanged", got)
		}
	})
}
