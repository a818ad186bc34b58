package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"net/url"
	"strings"
	"time"
	"unicode"
)

// DefaultSMTPTimeout bounds one message's whole conversation with the SMTP server: connecting,
// TLS, and every command and reply. A server that accepts and then says nothing costs this much,
// in the background sender, and never a request.
const DefaultSMTPTimeout = 30 * time.Second

// SMTPConfig says where the SMTP server is and how to talk to it: GATEHOUSE_SMTP_URL as
// ParseSMTPURL reads it, plus what tests and tools may set.
type SMTPConfig struct {
	Host               string // for the connection, the certificate check and PLAIN auth
	Port               string
	Username, Password string // AUTH PLAIN when Username is set (only over TLS, or to localhost)
	// ImplicitTLS is smtps://: TLS from the first byte. Otherwise STARTTLS is used whenever the
	// server offers it, and RequireTLS refuses to send when it does not (?tls=required).
	ImplicitTLS bool
	RequireTLS  bool
	// Timeout bounds one message (DefaultSMTPTimeout when zero).
	Timeout time.Duration
	// TLS is the client's TLS configuration; nil verifies the server against the system's roots
	// under Host. Tests set RootCAs.
	TLS *tls.Config
	// HelloName is the name given in EHLO ("localhost" when empty).
	HelloName string
}

// ParseSMTPURL reads GATEHOUSE_SMTP_URL: smtp://[user:pass@]host[:port][?tls=required] (port 587
// by default; STARTTLS whenever the server offers it, and with tls=required never without it) or
// smtps://[user:pass@]host[:port] (implicit TLS, port 465 by default). A user name or password
// with special characters is percent-encoded. Errors never show the password.
func ParseSMTPURL(raw string) (SMTPConfig, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return SMTPConfig{}, errors.New("GATEHOUSE_SMTP_URL is not a valid URL, as in smtp://user:pass@mail.example.com:587")
	}
	shown := u.Redacted()
	var cfg SMTPConfig
	switch u.Scheme {
	case "smtp":
		cfg.Port = "587"
	case "smtps":
		cfg.Port, cfg.ImplicitTLS, cfg.RequireTLS = "465", true, true
	default:
		return SMTPConfig{}, fmt.Errorf("GATEHOUSE_SMTP_URL must start with smtp:// or smtps://, got %q", shown)
	}
	if u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return SMTPConfig{}, fmt.Errorf("GATEHOUSE_SMTP_URL %q has a path; write smtp://user:pass@host:port", shown)
	}
	cfg.Host = u.Hostname()
	if cfg.Host == "" {
		return SMTPConfig{}, fmt.Errorf("GATEHOUSE_SMTP_URL %q names no host", shown)
	}
	if p := u.Port(); p != "" {
		cfg.Port = p
	}
	if u.User != nil {
		cfg.Username = u.User.Username()
		cfg.Password, _ = u.User.Password()
	}
	for key, values := range u.Query() {
		switch {
		case key == "tls" && len(values) == 1 && values[0] == "required":
			cfg.RequireTLS = true
		default:
			return SMTPConfig{}, fmt.Errorf("GATEHOUSE_SMTP_URL %q: unknown setting %q (the one setting is tls=required)", shown, key)
		}
	}
	return cfg, nil
}

// SMTP delivers messages to one SMTP server, one connection per message.
type SMTP struct{ cfg SMTPConfig }

// NewSMTP makes the transport; cfg comes from ParseSMTPURL.
func NewSMTP(cfg SMTPConfig) *SMTP {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultSMTPTimeout
	}
	if cfg.HelloName == "" {
		cfg.HelloName = "localhost"
	}
	return &SMTP{cfg: cfg}
}

// ErrNoTLS is the error of a server that offers no STARTTLS when ?tls=required asks for it. The
// message was not sent; it is tried again later, as with a server that is down.
var ErrNoTLS = errors.New("the SMTP server does not offer STARTTLS, and GATEHOUSE_SMTP_URL has tls=required")

// Send delivers e in one conversation, all of it within the timeout and ctx.
func (s *SMTP) Send(ctx context.Context, e Envelope) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	conn, err := s.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// Every read and write ends by the deadline, and at once when ctx is cancelled.
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c, err := smtp.NewClient(conn, s.cfg.Host)
	if err != nil {
		return fmt.Errorf("SMTP greeting: %w", err)
	}
	defer c.Close()
	if err := c.Hello(s.cfg.HelloName); err != nil {
		return fmt.Errorf("EHLO: %w", err)
	}
	if !s.cfg.ImplicitTLS {
		if err := s.startTLS(c); err != nil {
			return err
		}
	}
	if s.cfg.Username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return errors.New("AUTH: the SMTP server offers no authentication, and GATEHOUSE_SMTP_URL has a user")
		}
		if err := c.Auth(smtp.PlainAuth("", s.cfg.Username, s.cfg.Password, s.cfg.Host)); err != nil {
			return fmt.Errorf("AUTH: %w", err)
		}
	}
	if err := c.Mail(e.From); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	if err := c.Rcpt(e.To); err != nil {
		return refusal("RCPT TO", err)
	}
	w, err := c.Data()
	if err != nil {
		return refusal("DATA", err)
	}
	if _, err := w.Write(e.Data); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return refusal("end of DATA", err)
	}
	// The message is accepted; a failed QUIT changes nothing.
	_ = c.Quit()
	return nil
}

func (s *SMTP) dial(ctx context.Context) (net.Conn, error) {
	addr := net.JoinHostPort(s.cfg.Host, s.cfg.Port)
	dialer := &net.Dialer{}
	var conn net.Conn
	var err error
	if s.cfg.ImplicitTLS {
		conn, err = (&tls.Dialer{NetDialer: dialer, Config: s.tlsConfig()}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = dialer.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to SMTP server %s: %w", addr, err)
	}
	return conn, nil
}

// startTLS upgrades the connection whenever the server offers STARTTLS. A failed handshake is an
// error, never a reason to go on in the clear.
func (s *SMTP) startTLS(c *smtp.Client) error {
	if ok, _ := c.Extension("STARTTLS"); !ok {
		if s.cfg.RequireTLS {
			return ErrNoTLS
		}
		return nil
	}
	if err := c.StartTLS(s.tlsConfig()); err != nil {
		return fmt.Errorf("STARTTLS: %w", err)
	}
	return nil
}

func (s *SMTP) tlsConfig() *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.cfg.TLS != nil {
		cfg = s.cfg.TLS.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = s.cfg.Host
	}
	return cfg
}

// permanentError is the server refusing this message for good: a 5xx reply to RCPT TO or to the
// message itself (no such mailbox, message refused). Trying again cannot help. A 5xx anywhere
// else (a refused sender or login) is a setting to fix, and the message is kept and retried.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func refusal(stage string, err error) error {
	err = fmt.Errorf("%s: %w", stage, err)
	var reply *textproto.Error
	if errors.As(err, &reply) && reply.Code >= 500 {
		return &permanentError{err: err}
	}
	return err
}

// Permanent tells whether err means the message can never be delivered as it is.
func Permanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p) || errors.Is(err, ErrInvalidMessage)
}

// serverUnavailable tells whether err is about the server rather than this message: no reply at
// all (refused, reset, timed out, TLS failed) or a refusal of STARTTLS. Then the rest of a batch
// waits too, rather than each message waiting for its own timeout.
func serverUnavailable(err error) bool {
	var reply *textproto.Error
	return !errors.As(err, &reply) && !Permanent(err)
}

// describe is an error as it is stored in last_error and logged: one line, at most 500 bytes.
// Errors from here and from the server name no password and no body.
func describe(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	if len(s) > 500 {
		s = strings.ToValidUTF8(s[:500], "") + "…"
	}
	return s
}
