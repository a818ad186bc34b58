package auth_test

import (
	"crypto/rand"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"gatehouse/models/testdb"
	"gatehouse/services/auth"
	"gatehouse/services/geoip"
	"gatehouse/services/geoip/geoiptest"
	"gatehouse/services/mail"
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

// TestSignInNoticeNamesThePlace: with a GeoIP database, the notice of a sign-in on a new device
// says roughly where it came from; without one it leaves the line out.
func TestSignInNoticeNamesThePlace(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		places, err := geoip.Open(geoiptest.WriteCity(t, "GeoLite2-City"))
		if err != nil {
			t.Fatal(err)
		}
		defer places.Close()
		m := newMFAEnv(t, db) // Ann signed in on her laptop: her first device, no notice
		keys, err := auth.OpenKeyRing(t.TempDir(), rand.Reader, m.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		pw, err := auth.NewPasswords(fastPasswords, rand.Reader, 4, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		located := auth.New(testConfig, auth.Deps{Store: db.Store, Keys: keys, Passwords: pw, Now: m.clock.Now, Locate: places.Locate})
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		sender, err := mail.NewSender(mail.Config{From: "Gatehouse <no-reply@gatehouse.test>", PollInterval: time.Hour},
			mail.Deps{Store: db.Store, Transport: mail.NewLogTransport(log), Now: m.clock.Now, Random: rand.Reader, Log: log})
		if err != nil {
			t.Fatal(err)
		}
		located.SetMailer(sender)
		if _, err := located.SignIn(m.ctx, ann, testPassword, auth.Client{DeviceID: "ann-phone-0001", IP: "192.0.2.99"}); err != nil {
			t.Fatal(err)
		}
		if _, err := located.SignIn(m.ctx, ann, testPassword, auth.Client{DeviceID: "ann-tablet-001", IP: "203.0.113.5"}); err != nil {
			t.Fatal(err)
		}
		var bodies []string
		if err := db.Store.DB().Raw("SELECT text_body FROM mail_outbox WHERE recipient = ? AND subject LIKE 'New sign-in%' ORDER BY id", ann).Scan(&bodies).Error; err != nil {
			t.Fatal(err)
		}
		if len(bodies) != 2 {
			t.Fatalf("%d sign-in notices, want 2", len(bodies))
		}
		if !strings.Contains(bodies[0], "Approximate place: Lisbon, Portugal") {
			t.Errorf("the notice of a sign-in from Lisbon: %q", bodies[0])
		}
		if strings.Contains(bodies[1], "Approximate place") {
			t.Errorf("the notice of a sign-in from an unknown place names one: %q", bodies[1])
		}
	})
}
