package mail

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	netmail "net/mail"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	testFrom = Address{Name: "Gatehouse", Address: "no-reply@gatehouse.test"}
	testDate = time.Date(2026, 3, 2, 14, 5, 0, 0, time.UTC)
)

const testMessageID = "<abc123@gatehouse.test>"

func validMessage() Message {
	return Message{Kind: "password_reset", To: Address{Name: "Ann Example", Address: "ann@example.com"},
		Subject: "Reset your Gatehouse password", Text: "Open https://gatehouse.test/password/reset?token=t0k\n", HTML: "<p>Open the link</p>"}
}

// parsed is a composed message read back by net/mail and mime/multipart, as a mail client would.
type parsed struct {
	header     netmail.Header
	text, html string
}

func parse(t *testing.T, data []byte) parsed {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("read message: %v\n%s", err, data)
	}
	p := parsed{header: msg.Header}
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	if mediaType == "text/plain" {
		p.text = readQP(t, msg.Body)
		return p
	}
	if mediaType != "multipart/alternative" {
		t.Fatalf("Content-Type %s, want multipart/alternative", mediaType)
	}
	parts := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := parts.NextRawPart() // raw: the test decodes quoted-printable itself
		if errors.Is(err, io.EOF) {
			return p
		}
		if err != nil {
			t.Fatalf("next part: %v", err)
		}
		if cte := part.Header.Get("Content-Transfer-Encoding"); cte != "quoted-printable" {
			t.Errorf("part %s: Content-Transfer-Encoding %q", part.Header.Get("Content-Type"), cte)
		}
		switch ct := part.Header.Get("Content-Type"); ct {
		case "text/plain; charset=utf-8":
			p.text = readQP(t, part)
		case "text/html; charset=utf-8":
			p.html = readQP(t, part)
		default:
			t.Errorf("unexpected part %q", ct)
		}
	}
}

func readQP(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(quotedprintable.NewReader(r))
	if err != nil {
		t.Fatalf("quoted-printable: %v", err)
	}
	// Text goes over the wire with CRLF line endings; the test compares it with the LF it was
	// written with.
	return strings.ReplaceAll(string(b), "\r\n", "\n")
}

// headerNames are the headers a composed message has, no more.
var headerNames = []string{"Auto-Submitted", "Content-Type", "Date", "From", "Message-Id", "Mime-Version", "Subject", "To"}

func sortedKeys(h netmail.Header) []string {
	var keys []string
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestComposeBuildsHeadersAndParts(t *testing.T) {
	m := validMessage()
	m.Subject = "Réinitialisez votre mot de passe ✓ " + strings.Repeat("très long ", 12)
	m.Text = "Bonjour Zoë,\n\nhttps://gatehouse.test/password/reset?token=abc&x=1 " + strings.Repeat("é", 200) + "\n"
	m.HTML = `<p>Bonjour <a href="https://gatehouse.test/?token=abc&amp;x=1">Zoë</a></p>`
	if err := m.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	data, err := compose(testFrom, m, testMessageID, testDate)
	if err != nil {
		t.Fatalf("compose: %v", err)
	}
	for i, line := range strings.Split(string(data), "\r\n") {
		// A line may be 78 bytes; "Subject: " and a 75-byte encoded word (RFC 2047's longest)
		// make 84, and a boundary parameter is as long as it is.
		if limit := 78; len(line) > limit && !strings.HasPrefix(line, "Content-Type: multipart") &&
			!(strings.HasPrefix(line, "Subject: =?") && len(line) <= 84) {
			t.Errorf("line %d is %d bytes long (want at most %d): %q", i+1, len(line), limit, line)
		}
		if strings.ContainsAny(line, "\r\n") {
			t.Errorf("line %d holds a bare CR or LF: %q", i+1, line)
		}
	}
	p := parse(t, data)
	if got := sortedKeys(p.header); !slices.Equal(got, headerNames) {
		t.Errorf("headers %v, want %v", got, headerNames)
	}
	var dec mime.WordDecoder
	if subject, err := dec.DecodeHeader(p.header.Get("Subject")); err != nil || subject != m.Subject {
		t.Errorf("Subject decodes to %q, %v; want %q", subject, err, m.Subject)
	}
	if to, err := p.header.AddressList("To"); err != nil || len(to) != 1 || *to[0] != m.To {
		t.Errorf("To: %v, %v; want only %v", to, err, m.To)
	}
	if from, err := p.header.AddressList("From"); err != nil || len(from) != 1 || *from[0] != testFrom {
		t.Errorf("From: %v, %v; want %v", from, err, testFrom)
	}
	if date, err := p.header.Date(); err != nil || !date.Equal(testDate) {
		t.Errorf("Date: %v, %v; want %v", date, err, testDate)
	}
	if got := p.header.Get("Message-Id"); got != testMessageID {
		t.Errorf("Message-ID %q, want %q", got, testMessageID)
	}
	if p.text != m.Text {
		t.Errorf("text part %q, want %q", p.text, m.Text)
	}
	if p.html != m.HTML {
		t.Errorf("HTML part %q, want %q", p.html, m.HTML)
	}

	again, err := compose(testFrom, m, testMessageID, testDate)
	if err != nil || !bytes.Equal(again, data) {
		t.Error("composing the same row twice gave different bytes: a resent copy must be the same message")
	}
}

func TestComposeWithoutHTMLIsTextOnly(t *testing.T) {
	m := validMessage()
	m.HTML = ""
	data, err := compose(testFrom, m, testMessageID, testDate)
	if err != nil {
		t.Fatal(err)
	}
	p := parse(t, data)
	if ct := p.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if p.text != m.Text {
		t.Errorf("text %q, want %q", p.text, m.Text)
	}
}

func TestValidateRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Message)
	}{
		{"CR LF in the recipient's name", func(m *Message) { m.To.Name = "Ann\r\nBcc: evil@example.com" }},
		{"LF in the recipient's name", func(m *Message) { m.To.Name = "Ann\nBcc: evil@example.com" }},
		{"CR in the recipient's name", func(m *Message) { m.To.Name = "Ann\rBcc: evil@example.com" }},
		{"NUL in the recipient's name", func(m *Message) { m.To.Name = "Ann\x00" }},
		{"CR LF in the subject", func(m *Message) { m.Subject = "Hello\r\nBcc: evil@example.com" }},
		{"LF in the subject", func(m *Message) { m.Subject = "Hello\nBcc: evil@example.com" }},
		{"tab in the subject", func(m *Message) { m.Subject = "Hello\tthere" }},
		{"CR LF in the address", func(m *Message) { m.To.Address = "ann@example.com\r\nBcc: evil@example.com" }},
		{"two addresses", func(m *Message) { m.To.Address = "ann@example.com, evil@example.com" }},
		{"a name in the address", func(m *Message) { m.To.Address = "Evil <evil@example.com>" }},
		{"a comment in the address", func(m *Message) { m.To.Address = "ann@example.com (Ann)" }},
		{"no at", func(m *Message) { m.To.Address = "ann.example.com" }},
		{"no dot in the domain", func(m *Message) { m.To.Address = "ann@localhost" }},
		{"empty address", func(m *Message) { m.To.Address = "" }},
		{"address too long", func(m *Message) { m.To.Address = strings.Repeat("a", 64) + "@" + strings.Repeat("b", 190) + ".com" }},
		{"local part too long", func(m *Message) { m.To.Address = strings.Repeat("a", 65) + "@example.com" }},
		{"invalid UTF-8 in the address", func(m *Message) { m.To.Address = "ann\xff@example.com" }},
		{"invalid UTF-8 in the name", func(m *Message) { m.To.Name = "Ann\xff" }},
		{"empty subject", func(m *Message) { m.Subject = "" }},
		{"subject too long", func(m *Message) { m.Subject = strings.Repeat("x", 201) }},
		{"empty text", func(m *Message) { m.Text = " \n" }},
		{"NUL in the HTML", func(m *Message) { m.HTML = "<p>\x00</p>" }},
		{"no kind", func(m *Message) { m.Kind = "" }},
		{"kind with a line break", func(m *Message) { m.Kind = "reset\r\n" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := validMessage()
			tc.change(&m)
			if err := m.Validate(); !errors.Is(err, ErrInvalidMessage) {
				t.Errorf("Validate: %v, want ErrInvalidMessage", err)
			}
		})
	}
	if err := validMessage().Validate(); err != nil {
		t.Errorf("a valid message: %v", err)
	}
	m := validMessage()
	m.To.Name = `Ann "the admin" <evil@example.com>, Bcc: x@example.com; Zoë`
	m.To.Address = "zoë@exämple.com"
	if err := m.Validate(); err != nil {
		t.Errorf("quotes, brackets, commas and non-ASCII are fine in a name, and UTF-8 in an address: %v", err)
	}
}

// FuzzComposeHeaders: whatever name, address and subject a message is given, either Validate
// refuses it, or the composed message has exactly the usual headers, one recipient, and the
// name, address and subject given (a subject's outer spaces are folding white space to a reader).
func FuzzComposeHeaders(f *testing.F) {
	f.Add("Ann Example", "ann@example.com", "Reset your password")
	f.Add("Ann\r\nBcc: evil@example.com", "ann@example.com", "Hi")
	f.Add(`Ann" <evil@example.com>, "x`, "ann@example.com", "Hi\r\nBcc: evil@example.com")
	f.Add("=?utf-8?q?=0D=0ABcc:_evil@example.com?=", "ann@example.com", "=?utf-8?q?=0D=0ABcc:_x?=")
	f.Add("", "a@b.co", " 000000 ")
	f.Add("", "a@b.co", "é ")
	f.Add("", "a@b.co", "=??B??=0")
	f.Add("\\\u071b", "0@0.0", "x")
	f.Add("Zoë 🙂", "zoë@example.com", "Réinitialiser ✓ "+strings.Repeat("é", 150))
	f.Fuzz(func(t *testing.T, name, address, subject string) {
		m := validMessage()
		m.To = Address{Name: name, Address: address}
		m.Subject = subject
		if m.Validate() != nil {
			return
		}
		data, err := compose(testFrom, m, testMessageID, testDate)
		if err != nil {
			t.Fatalf("compose after Validate passed: %v", err)
		}
		p := parse(t, data)
		if got := sortedKeys(p.header); !slices.Equal(got, headerNames) {
			t.Fatalf("headers %v, want %v", got, headerNames)
		}
		to, err := p.header.AddressList("To")
		if err != nil || len(to) != 1 || to[0].Address != address || to[0].Name != name {
			t.Fatalf("To %q parses to %v, %v; want one address %q named %q", p.header.Get("To"), to, err, address, name)
		}
		var dec mime.WordDecoder
		if got, err := dec.DecodeHeader(p.header.Get("Subject")); err != nil || (got != subject && got != strings.Trim(subject, " ")) {
			t.Fatalf("Subject %q decodes to %q, %v; want %q", p.header.Get("Subject"), got, err, subject)
		}
	})
}

func TestParseSMTPURL(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want SMTPConfig
	}{
		{"smtp://mail.example.com", SMTPConfig{Host: "mail.example.com", Port: "587"}},
		{"smtp://user:p%40ss@mail.example.com:2525", SMTPConfig{Host: "mail.example.com", Port: "2525", Username: "user", Password: "p@ss"}},
		{"smtp://mail.example.com:587?tls=required", SMTPConfig{Host: "mail.example.com", Port: "587", RequireTLS: true}},
		{"smtps://user:pass@mail.example.com", SMTPConfig{Host: "mail.example.com", Port: "465", Username: "user", Password: "pass", ImplicitTLS: true, RequireTLS: true}},
		{"smtp://[::1]:1025/", SMTPConfig{Host: "::1", Port: "1025"}},
	} {
		got, err := ParseSMTPURL(tc.raw)
		if err != nil || got != tc.want {
			t.Errorf("ParseSMTPURL(%q) = %+v, %v; want %+v", tc.raw, got, err, tc.want)
		}
	}
	for _, raw := range []string{
		"http://user:secret@mail.example.com", "smtp://user:secret@mail.example.com/path", "smtp://user:secret@:25",
		"smtp://user:secret@mail.example.com?tls=maybe", "smtp://user:secret@mail.example.com?timeout=3s", "mail.example.com:25",
		"smtp://user:secret@mail.example.com:25#x", "smtp://user:secret@%zz",
	} {
		_, err := ParseSMTPURL(raw)
		if err == nil {
			t.Errorf("ParseSMTPURL(%q): no error", raw)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("ParseSMTPURL(%q): the error shows the password: %v", raw, err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseSMTPURL(%q): the error is not one line: %v", raw, err)
		}
	}
}

func TestParseFrom(t *testing.T) {
	for raw, want := range map[string]Address{
		"Gatehouse <no-reply@example.com>":  {Name: "Gatehouse", Address: "no-reply@example.com"},
		"no-reply@example.com":              {Address: "no-reply@example.com"},
		DefaultFrom("localhost"):            {Name: "Gatehouse", Address: "no-reply@localhost"},
		DefaultFrom("127.0.0.1"):            {Name: "Gatehouse", Address: "no-reply@127.0.0.1"},
		`"Gatehouse, Inc." <a@example.com>`: {Name: "Gatehouse, Inc.", Address: "a@example.com"},
	} {
		if got, err := ParseFrom(raw); err != nil || got != want {
			t.Errorf("ParseFrom(%q) = %+v, %v; want %+v", raw, got, err, want)
		}
	}
	for _, raw := range []string{"", "Gatehouse", "a@example.com, b@example.com", "Gate\r\nBcc: x@example.com <a@example.com>",
		"no-reply@exämple.com", "Gatehouse <no reply@example.com>"} {
		if got, err := ParseFrom(raw); err == nil {
			t.Errorf("ParseFrom(%q) = %+v, want an error", raw, got)
		}
	}
}

func TestBackoffDoublesUpToTheCap(t *testing.T) {
	s := &Sender{}
	s.cfg.setDefaults()
	var got []time.Duration
	for attempt := 1; attempt <= 12; attempt++ {
		got = append(got, s.backoff(attempt))
	}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300}
	for i := range want {
		want[i] *= time.Second
	}
	if !slices.Equal(got, want) {
		t.Errorf("backoff after attempts 1..12: %v, want %v", got, want)
	}
	if d := s.backoff(1 << 20); d != 5*time.Minute {
		t.Errorf("backoff after a million attempts: %v, want the cap", d)
	}
}

func TestDescribeIsOneShortLine(t *testing.T) {
	long := errors.New("550 5.1.1 <ann@example.com>:\r\n\tmailbox\x00 unavailable " + strings.Repeat("x", 600))
	got := describe(long)
	if strings.ContainsFunc(got, func(r rune) bool { return r < ' ' }) || len(got) > 504 {
		t.Errorf("describe: %q (%d bytes)", got, len(got))
	}
}
