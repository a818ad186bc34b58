package mail

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/textproto"
	"strings"
	"time"
	"unicode/utf8"
)

// newMessageID makes a Message-ID on the sender's domain from 128 random bits, as in
// "<3hd1…@example.com>". It is chosen once, at enqueue, so that a message sent twice (delivery is
// at least once) carries the same one and mail clients can tell the copies are one message.
func newMessageID(random io.Reader, from Address) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return "", fmt.Errorf("message id: %w", err)
	}
	id := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
	return "<" + id + "@" + from.Address[strings.LastIndexByte(from.Address, '@')+1:] + ">", nil
}

// compose builds the message as it goes over SMTP, with CRLF line endings: the headers, each
// made from a validated part and refused if it would hold a line break that is not a fold, then
// a multipart/alternative body of a text and an HTML part (just the text part when there is no
// HTML), both UTF-8 in quoted-printable. m must have passed Validate.
func compose(from Address, m Message, messageID string, date time.Time) ([]byte, error) {
	var buf bytes.Buffer
	headers := []struct{ name, value string }{
		{"Date", date.UTC().Format(time.RFC1123Z)},
		{"From", formatAddress(from)},
		{"To", formatAddress(m.To)},
		{"Subject", encodeSubject(m.Subject)},
		{"Message-ID", messageID},
		{"MIME-Version", "1.0"},
		{"Auto-Submitted", "auto-generated"}, // RFC 3834: no out-of-office replies to this
	}
	for _, h := range headers {
		if err := writeHeader(&buf, h.name, h.value); err != nil {
			return nil, err
		}
	}
	if m.HTML == "" {
		if err := writeHeader(&buf, "Content-Type", "text/plain; charset=utf-8"); err != nil {
			return nil, err
		}
		if err := writeHeader(&buf, "Content-Transfer-Encoding", "quoted-printable"); err != nil {
			return nil, err
		}
		buf.WriteString("\r\n")
		if err := writeQuotedPrintable(&buf, m.Text); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}

	parts := multipart.NewWriter(&buf)
	if err := parts.SetBoundary(boundaryFor(messageID)); err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	if err := writeHeader(&buf, "Content-Type", `multipart/alternative; boundary="`+parts.Boundary()+`"`); err != nil {
		return nil, err
	}
	buf.WriteString("\r\n")
	for _, part := range []struct{ contentType, body string }{
		{"text/plain; charset=utf-8", m.Text},
		{"text/html; charset=utf-8", m.HTML},
	} {
		w, err := parts.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.contentType},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, fmt.Errorf("compose: %w", err)
		}
		if err := writeQuotedPrintable(w, part.body); err != nil {
			return nil, err
		}
	}
	if err := parts.Close(); err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	return buf.Bytes(), nil
}

// writeHeader writes one header line. value may hold folds ("\r\n" followed by a space) that
// encodeSubject made; any other CR or LF is refused, whatever let it through.
func writeHeader(buf *bytes.Buffer, name, value string) error {
	if strings.ContainsAny(strings.ReplaceAll(value, "\r\n ", ""), "\r\n") {
		return fmt.Errorf("%w: the %s header would hold a line break", ErrInvalidMessage, name)
	}
	buf.WriteString(name)
	buf.WriteString(": ")
	buf.WriteString(value)
	buf.WriteString("\r\n")
	return nil
}

// encodeSubject encodes a subject that is not plain ASCII as RFC 2047 Q-encoded words, each at
// most 75 characters, folded onto lines of their own so that no header line grows long. A subject
// that holds "=?" is B-encoded whatever it holds, so that no reader decodes a look-alike of an
// encoded word in it into other text (a line break, say).
func encodeSubject(subject string) string {
	if strings.Contains(subject, "=?") {
		return encodeWords(subject)
	}
	encoded := mime.QEncoding.Encode("utf-8", subject)
	if encoded == subject {
		return subject
	}
	// The encoder separates its words with one space; inside a word a space is "_" and "?" is
	// "=3F", so "?= =?" occurs only between words.
	return strings.ReplaceAll(encoded, "?= =?", "?=\r\n =?")
}

// formatAddress writes an address header's value. A name of printable ASCII is a quoted string,
// as net/mail writes it; any other name, and one that holds "=?", is B-encoded (only letters,
// digits, "+", "/" and "=" inside the words). net/mail would Q-encode a non-ASCII name, and its
// Q-encoded words keep characters such as a backslash that RFC 2047 does not allow in a display
// name, so that readers (net/mail among them) fail to parse the header; and readers decode
// encoded-word look-alikes even inside a quoted string (both found by the tests).
func formatAddress(a Address) string {
	addr := (&Address{Address: a.Address}).String() // "<addr>", the local part quoted if it must be
	if a.Name == "" {
		return addr
	}
	if strings.Contains(a.Name, "=?") || strings.ContainsFunc(a.Name, func(r rune) bool { return r < ' ' || r > '~' }) {
		return encodeWords(a.Name) + " " + addr
	}
	return (&Address{Name: a.Name, Address: a.Address}).String()
}

// encodeWords writes s as RFC 2047 B-encoded UTF-8 words, even when s is plain ASCII (which
// mime's encoders leave as it is), each word on its own folded line. A word holds at most 45
// bytes of s, cut between runes: 60 characters of base64, 72 with its frame, under the 75 allowed.
func encodeWords(s string) string {
	var words []string
	for len(s) > 0 {
		n := min(len(s), 45)
		for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
			n--
		}
		words = append(words, "=?utf-8?b?"+base64.StdEncoding.EncodeToString([]byte(s[:n]))+"?=")
		s = s[n:]
	}
	return strings.Join(words, "\r\n ")
}

// boundaryFor is the multipart boundary of a message: "=_" cannot occur in quoted-printable text
// (it encodes "=" as "=3D"), so the boundary never collides with a body. It is derived from the
// Message-ID so that a resent copy is byte for byte the same.
func boundaryFor(messageID string) string {
	sum := sha256.Sum256([]byte(messageID))
	return "=_gatehouse_" + hex.EncodeToString(sum[:12])
}

func writeQuotedPrintable(w io.Writer, body string) error {
	qp := quotedprintable.NewWriter(w)
	if _, err := io.WriteString(qp, body); err != nil {
		return fmt.Errorf("compose: %w", err)
	}
	if err := qp.Close(); err != nil {
		return fmt.Errorf("compose: %w", err)
	}
	return nil
}
