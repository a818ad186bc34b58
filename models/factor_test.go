package models_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"gatehouse/models"
	"gatehouse/models/testdb"
)

// The guarded statements of second factors, on both databases: each accepts once, and only for
// the owner.

func confirmedTOTP(t *testing.T, db *testdb.DB, id, userID string) *models.Factor {
	t.Helper()
	f := &models.Factor{ID: id, UserID: userID, Kind: models.FactorTOTP, Name: "Phone", Secret: []byte("sealed"), CreatedAt: now}
	if err := db.Store.CreateFactor(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	if err := db.Store.ConfirmFactor(t.Context(), userID, id, "Phone", 100, now); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestFactorsAreTheOwners(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		createUser(t, db, "ann")
		createUser(t, db, "bob")
		pending := &models.Factor{ID: "f-pending", UserID: "ann", Kind: models.FactorTOTP, Name: "Phone", Secret: []byte("s"), CreatedAt: now}
		if err := db.Store.CreateFactor(ctx, pending); err != nil {
			t.Fatal(err)
		}
		if list, err := db.Store.Factors(ctx, "ann"); err != nil || len(list) != 0 {
			t.Fatalf("an unconfirmed factor is listed: %v, %v", list, err)
		}
		wantErr(t, "bob confirms ann's factor", db.Store.ConfirmFactor(ctx, "bob", "f-pending", "Mine", 1, now), models.ErrNotFound)
		if err := db.Store.ConfirmFactor(ctx, "ann", "f-pending", "Pixel", 7, now); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "confirm twice", db.Store.ConfirmFactor(ctx, "ann", "f-pending", "Pixel", 8, now), models.ErrNotFound)
		f, err := db.Store.FactorOf(ctx, "ann", "f-pending")
		if err != nil || f.Name != "Pixel" || f.LastStep != 7 || f.ConfirmedAt == nil {
			t.Fatalf("the confirmed factor: %+v, %v", f, err)
		}
		_, err = db.Store.FactorOf(ctx, "bob", "f-pending")
		wantErr(t, "bob reads ann's factor", err, models.ErrNotFound)
		wantErr(t, "bob renames ann's factor", db.Store.RenameFactor(ctx, "bob", "f-pending", "x"), models.ErrNotFound)
		wantErr(t, "bob removes ann's factor", db.Store.DeleteFactor(ctx, "bob", "f-pending"), models.ErrNotFound)
		if list, _ := db.Store.Factors(ctx, "ann"); len(list) != 1 || list[0].Name != "Pixel" {
			t.Fatalf("ann's factors after bob's attempts: %+v", list)
		}
	})
}

func TestTOTPStepIsAcceptedOnce(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		createUser(t, db, "ann")
		confirmedTOTP(t, db, "f1", "ann")
		for _, c := range []struct {
			step int64
			want bool
		}{{100, false}, {99, false}, {101, true}, {101, false}, {100, false}, {103, true}, {102, false}} {
			fresh, err := db.Store.UseTOTPStep(ctx, "f1", c.step, now)
			if err != nil || fresh != c.want {
				t.Fatalf("step %d: %v, %v; want %v", c.step, fresh, err, c.want)
			}
		}
		// Many at once: one wins.
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				fresh, err := db.Store.UseTOTPStep(ctx, "f1", 200, now)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				defer mu.Unlock()
				if fresh {
					wins++
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d concurrent uses of one step won, want 1", wins)
		}
	})
}

func TestRecoveryCodesAreUsedOnce(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		createUser(t, db, "ann")
		createUser(t, db, "bob")
		codes := [][]byte{tokenHash("a"), tokenHash("b"), tokenHash("c")}
		if err := db.Store.ReplaceRecoveryCodes(ctx, "ann", codes, now); err != nil {
			t.Fatal(err)
		}
		if err := db.Store.ReplaceRecoveryCodes(ctx, "bob", [][]byte{tokenHash("z")}, now); err != nil {
			t.Fatal(err)
		}
		if used, err := db.Store.UseRecoveryCode(ctx, "bob", tokenHash("a"), now); err != nil || used {
			t.Fatalf("bob uses ann's code: %v, %v", used, err)
		}
		if used, err := db.Store.UseRecoveryCode(ctx, "ann", tokenHash("a"), now); err != nil || !used {
			t.Fatalf("ann uses her code: %v, %v", used, err)
		}
		if used, err := db.Store.UseRecoveryCode(ctx, "ann", tokenHash("a"), now); err != nil || used {
			t.Fatalf("ann uses it again: %v, %v", used, err)
		}
		if n, err := db.Store.RecoveryCodesLeft(ctx, "ann"); err != nil || n != 2 {
			t.Fatalf("left: %d, %v", n, err)
		}
		// A new set voids the old one.
		if err := db.Store.ReplaceRecoveryCodes(ctx, "ann", [][]byte{tokenHash("d")}, now); err != nil {
			t.Fatal(err)
		}
		if used, _ := db.Store.UseRecoveryCode(ctx, "ann", tokenHash("b"), now); used {
			t.Fatal("a code of the old set works after a new set")
		}
		// Removing every factor removes the codes, of that user only.
		confirmedTOTP(t, db, "f1", "ann")
		if n, err := db.Store.DeleteFactors(ctx, "ann"); err != nil || n != 1 {
			t.Fatalf("DeleteFactors: %d, %v", n, err)
		}
		if n, _ := db.Store.RecoveryCodesLeft(ctx, "ann"); n != 0 {
			t.Fatalf("%d codes outlive the factors", n)
		}
		if n, _ := db.Store.RecoveryCodesLeft(ctx, "bob"); n != 1 {
			t.Fatal("bob's codes went with ann's")
		}
	})
}

func TestChallengeIsUsedOnce(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		createUser(t, db, "ann")
		ann := "ann"
		ch := &models.AuthChallenge{IDHash: tokenHash("ch"), Purpose: models.ChallengeSecondFactor, UserID: &ann, TokenVersion: 1,
			CreatedAt: now, ExpiresAt: now.Add(5 * time.Minute)}
		if err := db.Store.CreateChallenge(ctx, ch); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Store.OpenChallenge(ctx, ch.IDHash, models.ChallengePasskeyLogin, 5, now); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("open for another purpose: %v", err)
		}
		if _, err := db.Store.OpenChallenge(ctx, ch.IDHash, models.ChallengeSecondFactor, 5, now.Add(5*time.Minute)); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("open at its expiry: %v", err)
		}
		for i := 1; i <= 4; i++ {
			if n, err := db.Store.FailChallenge(ctx, ch.IDHash); err != nil || n != i {
				t.Fatalf("fail %d: %d, %v", i, n, err)
			}
		}
		if got, err := db.Store.OpenChallenge(ctx, ch.IDHash, models.ChallengeSecondFactor, 5, now); err != nil || got.Attempts != 4 || *got.UserID != "ann" {
			t.Fatalf("open after 4 wrong answers: %+v, %v", got, err)
		}
		// Many uses at once: one wins.
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := db.Store.UseChallenge(ctx, ch.IDHash, 5, now)
				if err != nil && !errors.Is(err, models.ErrNotFound) {
					t.Error(err)
				}
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					wins++
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d concurrent uses won, want 1", wins)
		}
		if _, err := db.Store.OpenChallenge(ctx, ch.IDHash, models.ChallengeSecondFactor, 5, now); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("open once used: %v", err)
		}
		if n, err := db.Store.FailChallenge(ctx, ch.IDHash); err != nil || n != 4 {
			t.Fatalf("a wrong answer to a used challenge counted: %d, %v", n, err)
		}

		// Too many wrong answers close one.
		dead := &models.AuthChallenge{IDHash: tokenHash("dead"), Purpose: models.ChallengeSecondFactor, UserID: &ann, CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
		if err := db.Store.CreateChallenge(ctx, dead); err != nil {
			t.Fatal(err)
		}
		for range 5 {
			db.Store.FailChallenge(ctx, dead.IDHash)
		}
		wantErr(t, "use after 5 wrong answers", db.Store.UseChallenge(ctx, dead.IDHash, 5, now), models.ErrNotFound)
		if err := db.Store.DeleteChallenges(ctx, "ann"); err != nil {
			t.Fatal(err)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM auth_challenges"); n != 0 {
			t.Fatalf("%d challenges after DeleteChallenges", n)
		}
	})
}
