package mail_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/services/mail"
	"gatehouse/services/mail/mailpit"
)

// The SMTP transport against a real server, Mailpit, in each TLS mode GATEHOUSE_SMTP_URL offers.

// testCert is a self-signed certificate for 127.0.0.1, written as PEM files for Mailpit, and the
// client configuration that trusts it.
type testCert struct {
	certFile, keyFile string
	client            *tls.Config
}

func newTestCert(t *testing.T) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gatehouse test SMTP"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := testCert{certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem")}
	if err := os.WriteFile(c.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	c.client = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	return c
}

// envelope is a small message composed as the Sender would, through a text-only log of nothing:
// the transports take bytes, and these tests only need a valid message.
func envelope(to, subject string) mail.Envelope {
	data := "From: Gatehouse <no-reply@gatehouse.test>\r\nTo: " + to + "\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + subject + "@gatehouse.test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello.\r\n"
	return mail.Envelope{From: "no-reply@gatehouse.test", To: to, Data: []byte(data),
		Message: mail.Message{Kind: "test", To: mail.Address{Address: to}, Subject: subject, Text: "Hello.\n"}}
}

func smtpTransport(t *testing.T, rawURL string, tlsConfig *tls.Config) *mail.SMTP {
	t.Helper()
	cfg, err := mail.ParseSMTPURL(rawURL)
	if err != nil {
		t.Fatalf("ParseSMTPURL(%q): %v", rawURL, err)
	}
	cfg.TLS = tlsConfig
	cfg.Timeout = 20 * time.Second
	return mail.NewSMTP(cfg)
}

func TestSMTPTransportModes(t *testing.T) {
	cert := newTestCert(t)
	for _, tc := range []struct {
		name     string
		opts     mailpit.Options
		url      func(srv *mailpit.Server) string
		client   *tls.Config
		wantErr  error // nil: delivered
		username string
	}{
		{
			name: "plain server, STARTTLS not offered: sent in the clear",
			url:  func(srv *mailpit.Server) string { return srv.SMTPURL() },
		},
		{
			name:    "plain server, tls=required: refused, nothing sent",
			url:     func(srv *mailpit.Server) string { return srv.SMTPURL() + "?tls=required" },
			wantErr: mail.ErrNoTLS,
		},
		{
			name:   "STARTTLS offered and required by the server: used",
			opts:   mailpit.Options{TLSCert: cert.certFile, TLSKey: cert.keyFile, RequireSTARTTLS: true},
			url:    func(srv *mailpit.Server) string { return srv.SMTPURL() },
			client: cert.client,
		},
		{
			name:   "STARTTLS offered, tls=required: used",
			opts:   mailpit.Options{TLSCert: cert.certFile, TLSKey: cert.keyFile, RequireSTARTTLS: true},
			url:    func(srv *mailpit.Server) string { return srv.SMTPURL() + "?tls=required" },
			client: cert.client,
		},
		{
			name: "STARTTLS offered with a certificate the client does not trust: refused, never in the clear",
			opts: mailpit.Options{TLSCert: cert.certFile, TLSKey: cert.keyFile},
			url:  func(srv *mailpit.Server) string { return srv.SMTPURL() },
			// no client roots: the system's, which do not hold the test certificate
			wantErr: errors.New("STARTTLS"),
		},
		{
			name:   "smtps: implicit TLS",
			opts:   mailpit.Options{TLSCert: cert.certFile, TLSKey: cert.keyFile, ImplicitTLS: true},
			url:    func(srv *mailpit.Server) string { return srv.SMTPURL() },
			client: cert.client,
		},
		{
			name: "user and password: AUTH PLAIN over STARTTLS",
			opts: mailpit.Options{TLSCert: cert.certFile, TLSKey: cert.keyFile, AcceptAnyAuth: true},
			url: func(srv *mailpit.Server) string {
				return strings.Replace(srv.SMTPURL(), "://", "://gatehouse:p%40ss@", 1)
			},
			client:   cert.client,
			username: "gatehouse",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			srv := mailpit.New(t, tc.opts)
			err := smtpTransport(t, tc.url(srv), tc.client).Send(ctx, envelope("ann@example.com", "mode-test"))
			msgs, listErr := srv.Messages(ctx)
			if listErr != nil {
				t.Fatal(listErr)
			}
			if tc.wantErr != nil {
				if err == nil || (!errors.Is(err, tc.wantErr) && !strings.Contains(err.Error(), tc.wantErr.Error())) {
					t.Errorf("Send: %v, want %v", err, tc.wantErr)
				}
				if mail.Permanent(err) {
					t.Errorf("Send: %v is permanent; a TLS problem is the server's or the setting's, and the message must wait", err)
				}
				if len(msgs) != 0 {
					t.Errorf("%d messages arrived, want none", len(msgs))
				}
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if len(msgs) != 1 || msgs[0].Subject != "mode-test" {
				t.Fatalf("messages %+v, want the one sent", msgs)
			}
			if msgs[0].Username != tc.username {
				t.Errorf("authenticated as %q, want %q", msgs[0].Username, tc.username)
			}
		})
	}
}

// TestSMTPTransportRefusedRecipientIsPermanent: a 550 to RCPT TO means the address will never
// take mail; a server that is down is not permanent.
func TestSMTPTransportRefusedRecipientIsPermanent(t *testing.T) {
	ctx := t.Context()
	srv := mailpit.New(t, mailpit.Options{AllowedRecipients: `@example\.com$`})
	transport := smtpTransport(t, srv.SMTPURL(), nil)
	err := transport.Send(ctx, envelope("ann@elsewhere.org", "refused"))
	if err == nil || !mail.Permanent(err) || !strings.Contains(err.Error(), "550") {
		t.Errorf("Send to a refused recipient: %v, want a permanent 550", err)
	}
	if err := transport.Send(ctx, envelope("ann@example.com", "accepted")); err != nil {
		t.Errorf("Send to an allowed recipient: %v", err)
	}
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	err = transport.Send(ctx, envelope("ann@example.com", "server-down"))
	if err == nil || mail.Permanent(err) {
		t.Errorf("Send while the server is down: %v, want an error that is not permanent", err)
	}
}

// TestSMTPTransportSilentServerTimesOut: a server that accepts the connection and never answers
// costs the transport's timeout, and a cancelled context ends the wait at once.
func TestSMTPTransportSilentServerTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	held := make(chan net.Conn, 4)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			held <- conn // never written to
		}
	}()
	t.Cleanup(func() {
		for len(held) > 0 {
			(<-held).Close()
		}
	})
	cfg, err := mail.ParseSMTPURL("smtp://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Timeout = 200 * time.Millisecond
	err = mail.NewSMTP(cfg).Send(t.Context(), envelope("ann@example.com", "silent"))
	var netErr net.Error
	if !errors.As(err, &netErr) || !netErr.Timeout() || mail.Permanent(err) {
		t.Errorf("Send to a silent server: %v, want a timeout that is not permanent", err)
	}

	cfg.Timeout = time.Hour
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-held // connected: now give up
		cancel()
	}()
	if err := mail.NewSMTP(cfg).Send(ctx, envelope("ann@example.com", "cancelled")); err == nil {
		t.Error("Send with a cancelled context: no error")
	}
}
