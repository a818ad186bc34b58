package handlers

import (
	"strings"
	"testing"
	"time"

	"gatehouse/services/auth"
)

// Every kind of security event reads as a sentence a person understands, naming the device where
// there is one; those that may mean someone else is in the account say what to do.
func TestEveryEventKindInPlainLanguage(t *testing.T) {
	cases := []struct {
		kind              auth.EventKind
		device, text      string
		advice, adviceURL string
		detail            string
	}{
		{auth.EventAccountCreated, "", "Your account was created.", "", "", ""},
		{auth.EventSignedIn, "Rae's phone", "New sign-in on Rae's phone.", "", "", ""},
		{auth.EventSignedOut, "Rae's phone", "Rae's phone was signed out.", "", "", ""},
		{auth.EventSignedOut, "", "A device was signed out.", "", "", ""},
		{auth.EventSignedOutOthers, "", "All your other devices were signed out.", "", "", ""},
		{auth.EventSignedOutEverywhere, "", "You signed out everywhere: every device was signed out.", "", "", ""},
		{auth.EventPasswordChanged, "Rae's laptop", "Your password was changed on Rae's laptop, and every other device was signed out.", "", "", ""},
		{auth.EventTokenReused, "Rae's phone", "Someone may have a copy of your sign-in on Rae's phone; we signed that device out.", "If this wasn't you, change your password.", "/account", ""},
		{auth.EventTokenReused, "", "Someone may have a copy of your sign-in on one of your devices; we signed that device out.", "If this wasn't you, change your password.", "/account", ""},
		{auth.EventUserDisabled, "", "Your account was disabled by an administrator, and every device was signed out.", "", "", ""},
		{auth.EventSignInFailed, "", "Someone tried to sign in to your account with a wrong password.", "If this wasn't you, your password kept them out. If it is easy to guess, change it.", "/account", ""},
		{auth.EventPasswordCheckFailed, "Rae's phone", "A wrong current password was entered on Rae's phone while signed in.", "If this wasn't you, sign that device out and change your password.", "/account", ""},
		{auth.EventSessionEvicted, "Old tablet", "Old tablet was signed out because too many devices were signed in; the one unused the longest goes first.", "", "", ""},
		{auth.EventPasswordReset, "", "Your password was reset with an emailed link, and every device was signed out.", "If this wasn't you, someone can read your email: secure your email account, then reset your password again.", "/password/forgot", ""},
		{auth.EventEmailVerified, "", "Your email address was verified.", "", "", ""},
		{auth.EventEmailChanged, "", "Your email address was changed.", "If this wasn't you, open the undo link we sent to your old address.", "", ""},
		{auth.EventEmailChangeUndone, "", "An email change was undone from your old address, and every device was signed out.", "", "", ""},
		{auth.EventSignedIn, "Rae's phone", "New sign-in on Rae's phone (password and authenticator app).", "", "", "pwd otp"},
		{auth.EventSignedIn, "Rae's phone", "New sign-in on Rae's phone (passkey).", "", "", "hwk"},
		{auth.EventTOTPAdded, "", `An authenticator app was added ("Rae's phone"): sign-ins now ask for its code.`, "", "", "Rae's phone"},
		{auth.EventPasskeyAdded, "", `A passkey was added ("YubiKey").`, "", "", "YubiKey"},
		{auth.EventFactorRemoved, "", `A second factor was removed ("YubiKey").`, "If this wasn't you, change your password and add a second factor again.", "/account/security", "YubiKey"},
		{auth.EventRecoveryCodesMade, "", "New recovery codes were made; the old ones no longer work.", "", "", ""},
		{auth.EventRecoveryCodeUsed, "Old tablet", "A recovery code was used to sign in on Old tablet.", "If this wasn't you, change your password and make new recovery codes.", "/account/security", ""},
		{auth.EventSecondFactorFailed, "", "A wrong second-factor code was entered after a correct password.", "Someone who knows your password may be trying to get in. If this wasn't you, change your password.", "/account", ""},
		{auth.EventFactorsReset, "", "An administrator removed your second factors and passkeys: your password alone signs in.", "If this wasn't you, change your password and add a second factor again.", "/account/security", ""},
	}
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	for _, c := range cases {
		row := eventRow(auth.Event{Kind: c.kind, DeviceName: c.device, Detail: c.detail, IP: "192.0.2.1", At: at})
		if row.Text != c.text {
			t.Errorf("%s on %q: text %q, want %q", c.kind, c.device, row.Text, c.text)
		}
		if row.Advice != c.advice || row.AdviceLink != c.adviceURL {
			t.Errorf("%s: advice %q → %q, want %q → %q", c.kind, row.Advice, row.AdviceLink, c.advice, c.adviceURL)
		}
		if (row.AdviceLink == "") != (row.AdviceLinkText == "") {
			t.Errorf("%s: link %q with text %q", c.kind, row.AdviceLink, row.AdviceLinkText)
		}
		if row.IP != "192.0.2.1" || !row.At.Equal(at) {
			t.Errorf("%s: IP %q at %v", c.kind, row.IP, row.At)
		}
		if strings.Contains(row.Text, string(c.kind)) {
			t.Errorf("%s: the text is the raw kind", c.kind)
		}
	}
}
