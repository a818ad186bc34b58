package mail

import (
	"time"

	"github.com/a-h/templ"
)

// The kinds of message, as the outbox, the logs and the metrics name them.
const (
	KindPasswordReset      = "password_reset"
	KindPasswordChanged    = "password_changed"
	KindVerifyEmail        = "verify_email"
	KindConfirmEmailChange = "confirm_email_change"
	KindEmailChanged       = "email_changed"
	KindNewSignIn          = "new_sign_in"
	KindTokenReplayed      = "token_replayed"
	KindRecoveryCodeUsed   = "recovery_code_used"
	KindSignInMethods      = "sign_in_methods_changed"
)

// Kinds lists every kind of message, for tests and metrics.
var Kinds = []string{KindPasswordReset, KindPasswordChanged, KindVerifyEmail, KindConfirmEmailChange,
	KindEmailChanged, KindNewSignIn, KindTokenReplayed, KindRecoveryCodeUsed, KindSignInMethods}

// PasswordReset carries a password-reset link, to the account's address.
type PasswordReset struct {
	Email    string        // the account's address
	Link     string        // absolute URL on GATEHOUSE_BASE_URL: /password/reset?token=…
	ValidFor time.Duration // GATEHOUSE_RESET_TTL
}

// PasswordChanged tells the owner that the account's password was changed (on the account page
// or through a reset link).
type PasswordChanged struct {
	Email     string
	At        time.Time
	ResetLink string // absolute URL of /password/forgot: what to do when it was not them
}

// VerifyEmail carries the link that marks an address verified, to that address.
type VerifyEmail struct {
	Email    string
	Link     string // absolute URL: /verify-email?token=…
	ValidFor time.Duration
}

// ConfirmEmailChange carries the link that confirms a new address, to the new address.
type ConfirmEmailChange struct {
	NewEmail string
	Link     string // absolute URL: /account/email/confirm?token=…
	ValidFor time.Duration
}

// EmailChanged tells the old address that the account's address changed, with a link that undoes
// the change and signs every device out.
type EmailChanged struct {
	OldEmail, NewEmail string
	At                 time.Time
	UndoLink           string // absolute URL with ?token=…
	UndoValidFor       time.Duration
}

// NewSignIn tells the owner that the account signed in on a device it had not used before.
type NewSignIn struct {
	Email               string
	Device, Browser, OS string // as "Your devices" shows them; "" reads "unknown"
	IP                  string
	Place               string // the IP's approximate place ("Lisbon, Portugal") with GATEHOUSE_GEOIP_DB; "" leaves the line out
	At                  time.Time
	DevicesLink         string // absolute URL of /devices
	SettingsLink        string // where the person turns these notices off; "" leaves that line out
}

// TokenReplayed tells the owner that a rotated refresh token was presented again (token_reused)
// and the device session it belonged to was signed out.
type TokenReplayed struct {
	Email       string
	Device      string // the signed-out device's name
	IP          string // where the replay came from
	At          time.Time
	DevicesLink string
}

// RecoveryCodeUsed tells the owner that a recovery code was used to sign in.
type RecoveryCodeUsed struct {
	Email        string
	Device, IP   string
	At           time.Time
	Remaining    int    // recovery codes left
	SecurityLink string // absolute URL of /account/security
}

// SignInMethodsChanged tells the owner that how the account signs in changed: a second factor or
// passkey added or removed, new recovery codes, or an operator's reset of them.
type SignInMethodsChanged struct {
	Email        string
	Change       string // what happened, as a sentence: `An authenticator app ("Rae's phone") was added.`
	IP           string // where it was done from; "" for an operator's command
	At           time.Time
	SecurityLink string // absolute URL of /account/security
}

// Kind is KindPasswordReset.
func (PasswordReset) Kind() string { return KindPasswordReset }

// Subject is the subject line of a PasswordReset message.
func (PasswordReset) Subject() string { return "Reset your Gatehouse password" }

func (e PasswordReset) text() templ.Component { return passwordResetText(e) }
func (e PasswordReset) html() templ.Component { return passwordResetHTML(e) }

// Kind is KindPasswordChanged.
func (PasswordChanged) Kind() string { return KindPasswordChanged }

// Subject is the subject line of a PasswordChanged message.
func (PasswordChanged) Subject() string { return "Your Gatehouse password was changed" }

func (e PasswordChanged) text() templ.Component { return passwordChangedText(e) }
func (e PasswordChanged) html() templ.Component { return passwordChangedHTML(e) }

// Kind is KindVerifyEmail.
func (VerifyEmail) Kind() string { return KindVerifyEmail }

// Subject is the subject line of a VerifyEmail message.
func (VerifyEmail) Subject() string { return "Confirm your email address for Gatehouse" }

func (e VerifyEmail) text() templ.Component { return verifyEmailText(e) }
func (e VerifyEmail) html() templ.Component { return verifyEmailHTML(e) }

// Kind is KindConfirmEmailChange.
func (ConfirmEmailChange) Kind() string { return KindConfirmEmailChange }

// Subject is the subject line of a ConfirmEmailChange message.
func (ConfirmEmailChange) Subject() string { return "Confirm your new email address for Gatehouse" }

func (e ConfirmEmailChange) text() templ.Component { return confirmEmailChangeText(e) }
func (e ConfirmEmailChange) html() templ.Component { return confirmEmailChangeHTML(e) }

// Kind is KindEmailChanged.
func (EmailChanged) Kind() string { return KindEmailChanged }

// Subject is the subject line of a EmailChanged message.
func (EmailChanged) Subject() string { return "Your Gatehouse email address was changed" }

func (e EmailChanged) text() templ.Component { return emailChangedText(e) }
func (e EmailChanged) html() templ.Component { return emailChangedHTML(e) }

// Kind is KindNewSignIn.
func (NewSignIn) Kind() string { return KindNewSignIn }

// Subject is the subject line of a NewSignIn message.
func (NewSignIn) Subject() string { return "New sign-in to your Gatehouse account" }

func (e NewSignIn) text() templ.Component { return newSignInText(e) }
func (e NewSignIn) html() templ.Component { return newSignInHTML(e) }

// Kind is KindTokenReplayed.
func (TokenReplayed) Kind() string { return KindTokenReplayed }

// Subject is the subject line of a TokenReplayed message.
func (TokenReplayed) Subject() string {
	return "A device was signed out of your Gatehouse account"
}

func (e TokenReplayed) text() templ.Component { return tokenReplayedText(e) }
func (e TokenReplayed) html() templ.Component { return tokenReplayedHTML(e) }

// Kind is KindRecoveryCodeUsed.
func (RecoveryCodeUsed) Kind() string { return KindRecoveryCodeUsed }

// Subject is the subject line of a RecoveryCodeUsed message.
func (RecoveryCodeUsed) Subject() string { return "A recovery code was used on your Gatehouse account" }

func (e RecoveryCodeUsed) text() templ.Component { return recoveryCodeUsedText(e) }
func (e RecoveryCodeUsed) html() templ.Component { return recoveryCodeUsedHTML(e) }

// Kind is KindSignInMethods.
func (SignInMethodsChanged) Kind() string { return KindSignInMethods }

// Subject is the subject line of a SignInMethodsChanged message.
func (SignInMethodsChanged) Subject() string { return "How you sign in to Gatehouse changed" }

func (e SignInMethodsChanged) text() templ.Component { return signInMethodsText(e) }
func (e SignInMethodsChanged) html() templ.Component { return signInMethodsHTML(e) }
