// Package mail sends Gatehouse's email. A flow writes a Message into the outbox in the same
// transaction as its action (Sender.Enqueue), calls Sender.Notify once that transaction has
// committed, and the Sender, running in the background, delivers it through a Transport: SMTP
// when GATEHOUSE_SMTP_URL is set, the log otherwise. Requests never wait for a mail server.
//
// Every header is built here from validated parts: addresses are checked with net/mail, no header
// value may hold CR or LF, the subject is encoded with mime.QEncoding, and the bodies go in as
// quoted-printable text and HTML parts of a multipart/alternative message. Nothing tracks the
// reader: no pixels, no rewritten links.
package mail

import (
	"errors"
	"fmt"
	netmail "net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Address is an email address with an optional display name, as net/mail has it.
type Address = netmail.Address

// Message is one email, as a flow writes it. From is the Sender's (GATEHOUSE_MAIL_FROM), and Date
// and Message-ID are set when it is enqueued.
type Message struct {
	Kind    string  // what it is about, e.g. "password_reset": stored and logged, never sent
	To      Address // Name may be empty
	Subject string
	Text    string // the text/plain body; required
	HTML    string // the text/html body; optional (without it the message is text only)
}

// ErrInvalidMessage is the error of a message that cannot be sent as it is: a bad address, a
// control character in a header, an empty body. It is always wrapped with the reason.
var ErrInvalidMessage = errors.New("invalid message")

// Limits on what goes into headers.
const (
	maxAddressLength = 254 // RFC 5321's limit on a forward path, less the angle brackets
	maxLocalLength   = 64
	maxNameLength    = 256 // bytes of a display name
	maxSubjectLength = 200 // characters: one encoded header stays well under 998 bytes a line
	maxKindLength    = 64
)

// CheckAddress tells whether addr is a bare email address that can go into a header and an SMTP
// envelope, as a recipient: valid UTF-8, at most 254 bytes, no control characters or spaces,
// exactly what net/mail parses it to (no display name, comment or second address), a local part
// of at most 64 bytes, and a domain with a dot (as auth.NormalizeEmail wants of every account).
func CheckAddress(addr string) error {
	if err := checkBareAddress(addr); err != nil {
		return err
	}
	if !strings.Contains(addr[strings.LastIndexByte(addr, '@')+1:], ".") {
		return fmt.Errorf("%w: %q is not an address of a domain with a dot", ErrInvalidMessage, addr)
	}
	return nil
}

// checkBareAddress is CheckAddress without the dot: the sender may be no-reply@localhost.
func checkBareAddress(addr string) error {
	if addr == "" {
		return fmt.Errorf("%w: the address is empty", ErrInvalidMessage)
	}
	if len(addr) > maxAddressLength || !utf8.ValidString(addr) {
		return fmt.Errorf("%w: the address is longer than %d bytes or not UTF-8", ErrInvalidMessage, maxAddressLength)
	}
	if strings.ContainsFunc(addr, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) {
		return fmt.Errorf("%w: the address holds a control character or a space", ErrInvalidMessage)
	}
	parsed, err := netmail.ParseAddress(addr)
	if err != nil || parsed.Address != addr || parsed.Name != "" {
		return fmt.Errorf("%w: %q is not a bare email address", ErrInvalidMessage, addr)
	}
	if at := strings.LastIndexByte(addr, '@'); at < 1 || at > maxLocalLength || at == len(addr)-1 {
		return fmt.Errorf("%w: %q has no local part of 1 to %d bytes and domain", ErrInvalidMessage, addr, maxLocalLength)
	}
	return nil
}

// checkHeaderText refuses text that cannot be one header value as it is: invalid UTF-8, or any
// control character (CR and LF above all: they would start a new header).
func checkHeaderText(what, s string, maxBytes int) error {
	if len(s) > maxBytes || !utf8.ValidString(s) {
		return fmt.Errorf("%w: the %s is longer than %d bytes or not UTF-8", ErrInvalidMessage, what, maxBytes)
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return fmt.Errorf("%w: the %s holds a control character", ErrInvalidMessage, what)
	}
	return nil
}

// Validate checks everything that goes into the message's headers and bodies, so that a message
// that passes can be built and sent as it is. Errors wrap ErrInvalidMessage.
func (m Message) Validate() error {
	if m.Kind == "" || len(m.Kind) > maxKindLength || strings.ContainsFunc(m.Kind, func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_'
	}) {
		return fmt.Errorf("%w: kind %q is not 1 to %d of a-z, 0-9 and _", ErrInvalidMessage, m.Kind, maxKindLength)
	}
	if err := CheckAddress(m.To.Address); err != nil {
		return fmt.Errorf("recipient: %w", err)
	}
	if err := checkHeaderText("recipient name", m.To.Name, maxNameLength); err != nil {
		return err
	}
	if m.Subject == "" {
		return fmt.Errorf("%w: the subject is empty", ErrInvalidMessage)
	}
	if err := checkHeaderText("subject", m.Subject, 4*maxSubjectLength); err != nil {
		return err
	}
	if utf8.RuneCountInString(m.Subject) > maxSubjectLength {
		return fmt.Errorf("%w: the subject is longer than %d characters", ErrInvalidMessage, maxSubjectLength)
	}
	if strings.TrimSpace(m.Text) == "" {
		return fmt.Errorf("%w: the text body is empty", ErrInvalidMessage)
	}
	for what, body := range map[string]string{"text body": m.Text, "HTML body": m.HTML} {
		if !utf8.ValidString(body) || strings.ContainsRune(body, 0) {
			return fmt.Errorf("%w: the %s is not UTF-8 or holds a NUL", ErrInvalidMessage, what)
		}
	}
	return nil
}

// ParseFrom reads GATEHOUSE_MAIL_FROM, as in "Gatehouse <no-reply@example.com>" or a bare
// address. The address must be ASCII (write an international domain in its xn-- form): its domain
// also names every Message-ID.
func ParseFrom(raw string) (Address, error) {
	bad := func(why string) (Address, error) {
		return Address{}, fmt.Errorf("%q is not a sender address such as \"Gatehouse <no-reply@example.com>\": %s", raw, why)
	}
	if strings.ContainsAny(raw, "\r\n") {
		return bad("it holds a line break")
	}
	a, err := netmail.ParseAddress(raw)
	if err != nil {
		return bad(strings.TrimPrefix(err.Error(), "mail: "))
	}
	if err := checkBareAddress(a.Address); err != nil {
		return bad(strings.TrimPrefix(err.Error(), ErrInvalidMessage.Error()+": "))
	}
	if err := checkHeaderText("name", a.Name, maxNameLength); err != nil {
		return bad(strings.TrimPrefix(err.Error(), ErrInvalidMessage.Error()+": "))
	}
	if strings.ContainsFunc(a.Address, func(r rune) bool { return r >= utf8.RuneSelf }) {
		return bad("the address is not ASCII (write the domain in its xn-- form)")
	}
	return *a, nil
}

// DefaultFrom is GATEHOUSE_MAIL_FROM's default for a portal whose base URL has this host (no
// port): "Gatehouse <no-reply@host>".
func DefaultFrom(host string) string {
	return "Gatehouse <no-reply@" + host + ">"
}
