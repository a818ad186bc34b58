package pages

import "time"

// SecurityPage is /account/security: the person's second factors and passkeys, with add, rename
// and remove, and their recovery codes.
type SecurityPage struct {
	Frame
	Now               time.Time
	Factors           []FactorRow
	RecoveryCodesLeft int               // unused recovery codes (0 with no second factor)
	PasskeyName       string            // the name field of "Add a passkey", kept after an error
	Errors            map[string]string // "passkey_name", "passkey" (a failed registration) → message
}

// FactorRow is one second factor or passkey on the security page.
type FactorRow struct {
	ID         string
	Kind       string // "totp" or "passkey"
	Name       string // e.g. "Rae's phone", "YubiKey"
	AddedAt    time.Time
	LastUsedAt *time.Time // nil: never used since it was added
	// Last is true when this is the account's only second factor: its remove control explains that
	// removing it leaves the password alone and voids the recovery codes.
	Last        bool
	RenameError string // after a refused rename of this factor
	RenameValue string // the refused input, kept in the rename field; empty: the field holds Name
}

// TOTPEnrolPage is the step of adding an authenticator app: the QR code (rendered on the server as
// inline SVG), the secret as text, and the form that confirms it with a first code.
type TOTPEnrolPage struct {
	Frame
	FactorID string // hidden field "factor"
	Secret   string // base32, shown in groups of four for typing in
	URI      string // otpauth:// URI, also offered as a link for phones ("Open in your authenticator app")
	// QR is the QR code of URI as modules, QR[y][x] true for dark, quiet zone included; the page
	// draws it as an SVG of squares.
	QR        [][]bool
	Name      string // name field, e.g. "Authenticator app"
	NameError string // next to the name field
	Error     string // next to the code field
}

// RecoveryCodesPage shows a new set of recovery codes, once, with what they are for.
type RecoveryCodesPage struct {
	Frame
	Codes []string
	// First is true when they came with the account's first second factor (the heading says the
	// factor was added); false after "Make new codes" (it says the old ones no longer work).
	First bool
}

// SecondFactorPage is the second step of a sign-in (/login/second-factor): a code field (TOTP or
// recovery code) and, when a passkey is registered, "Use a passkey" (shown by the script only).
type SecondFactorPage struct {
	Frame
	Next          string // hidden field "next", passed through from the sign-in
	TOTP          bool   // an authenticator app is enrolled: the field asks for its code
	Passkeys      bool   // a passkey is registered
	RecoveryCodes int    // unused recovery codes: the page says a recovery code works too when > 0
	Error         string // next to the code field
}
