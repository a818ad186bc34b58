package mail

import (
	"context"
	"log/slog"
	"regexp"
)

// Transport delivers one composed message. The Sender is its only caller, in the background.
type Transport interface {
	// Send delivers e or says why not. An error that Permanent reports is the server refusing
	// this message for good; any other may pass (the server is away, busy, or timed out).
	Send(ctx context.Context, e Envelope) error
}

// Envelope is a message ready to go: the SMTP envelope, the message as the flow wrote it (for
// the log transport) and its bytes as they go over SMTP.
type Envelope struct {
	From    string // bare address for MAIL FROM
	To      string // bare address for RCPT TO
	Message Message
	Data    []byte // RFC 5322, CRLF line endings
}

// NewTransport is the transport GATEHOUSE_SMTP_URL asks for: SMTP when smtpURL is set, the log
// (each message logged with its text, nothing sent) when it is "".
func NewTransport(smtpURL string, log *slog.Logger) (Transport, error) {
	if smtpURL == "" {
		return NewLogTransport(log), nil
	}
	cfg, err := ParseSMTPURL(smtpURL)
	if err != nil {
		return nil, err
	}
	return NewSMTP(cfg), nil
}

// LogTransport stands in for SMTP when no GATEHOUSE_SMTP_URL is configured (make run): it logs
// each message, clearly marked as not sent, with its text body and the links in it, so that a
// developer can follow a reset or verification link. It is the only place a body is ever logged.
type LogTransport struct{ log *slog.Logger }

// NewLogTransport logs to log.
func NewLogTransport(log *slog.Logger) *LogTransport { return &LogTransport{log: log} }

// LogNotSent is the message of the log transport's line.
const LogNotSent = "mail not sent (no GATEHOUSE_SMTP_URL): logged instead"

var linkPattern = regexp.MustCompile(`https?://[^\s<>"]+`)

// Send logs e and never fails.
func (l *LogTransport) Send(ctx context.Context, e Envelope) error {
	l.log.InfoContext(ctx, LogNotSent,
		"kind", e.Message.Kind, "to", e.To, "subject", e.Message.Subject,
		"links", linkPattern.FindAllString(e.Message.Text, -1), "text", e.Message.Text)
	return nil
}
