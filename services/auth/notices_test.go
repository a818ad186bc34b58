package auth_test

import (
	"strings"
	"testing"

	"gatehouse/models/testdb"
)

// TestSignInMethodChangesAreMailed (ASVS 5.0 6.3.6): adding or removing a second factor, new
// recovery codes, and an operator's reset each mail the owner, with what changed.
func TestSignInMethodChangesAreMailed(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		m := newMFAEnv(t, db)
		const subject = "How you sign in to Gatehouse changed"
		bodies := func() []string {
			var list []string
			if err := db.Store.DB().Raw("SELECT text_body FROM mail_outbox WHERE recipient = ? AND subject = ? ORDER BY id", ann, subject).Scan(&list).Error; err != nil {
				t.Fatal(err)
			}
			return list
		}
		p := m.principal(t, m.laptop.AccessToken)
		app := m.enrol(t, p, "Ann's phone")
		m.enrol(t, p, "Ann's tablet")
		if _, err := m.svc.RegenerateRecoveryCodes(m.ctx, p, testIP); err != nil {
			t.Fatal(err)
		}
		if _, err := m.svc.RemoveFactor(m.ctx, p, app.factorID, testIP); err != nil {
			t.Fatal(err)
		}
		if _, err := m.svc.ResetSecondFactors(m.ctx, ann); err != nil {
			t.Fatal(err)
		}
		got := bodies()
		want := []string{
			`An authenticator app ("Ann's phone") was added.`,
			`An authenticator app ("Ann's tablet") was added.`,
			"New recovery codes were made; the old ones no longer work.",
			`"Ann's phone" was removed.`,
			"An administrator removed every second factor and passkey",
		}
		if len(got) != len(want) {
			t.Fatalf("%d notices, want %d: %q", len(got), len(want), got)
		}
		for i, w := range want {
			if !strings.Contains(got[i], w) {
				t.Errorf("notice %d says %q, want it to say %q", i+1, got[i], w)
			}
		}
		if !strings.Contains(got[3], "Ann's phone") || strings.Contains(got[3], "last second factor") {
			t.Errorf("removing one of two factors: %q", got[3])
		}
	})
}
