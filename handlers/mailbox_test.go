package handlers_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	netmail "net/mail"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/handlers"
	"gatehouse/models/testdb"
	"gatehouse/services/auth"
	"gatehouse/services/mail"
	"gatehouse/services/mail/mailpit"
)

// The mail of a test server: its outbox sender delivers over real SMTP to a Mailpit of the test's
// own, and the tests read what arrived through Mailpit's API, as a person reads their inbox.

const testMailFrom = "Gatehouse <no-reply@gatehouse.test>"

// mailbox is one test server's sender and the Mailpit it delivers to.
type mailbox struct {
	ts     *testServer
	srv    *mailpit.Server
	sender *mail.Sender
	sent   int             // messages Mailpit accepted so far
	seen   map[string]bool // Mailpit ids a test has taken already
}

// newMailServer is a test server whose auth service writes mail to the outbox, with the mailbox
// that delivers it. Nothing is delivered until a test calls deliver (or a method that does).
func newMailServer(t *testing.T, db *testdb.DB, authOpt func(*auth.Config), opts ...serverOption) (*testServer, *mailbox) {
	t.Helper()
	srv := mailpit.New(t, mailpit.Options{})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	transport, err := mail.NewTransport(srv.SMTPURL(), log)
	if err != nil {
		t.Fatal(err)
	}
	var sender *mail.Sender
	withSender := func(_ *handlers.Deps, a *auth.Deps) {
		sender, err = mail.NewSender(mail.Config{From: testMailFrom, PollInterval: time.Hour},
			mail.Deps{Store: a.Store, Transport: transport, Now: a.Now, Random: rand.Reader, Log: log})
		if err != nil {
			t.Fatal(err)
		}
	}
	ts := newTestServerWithService(t, db, authOpt, withSender, func(svc *auth.Service) { svc.SetMailer(sender) }, opts...)
	return ts, &mailbox{ts: ts, srv: srv, sender: sender, seen: map[string]bool{}}
}

// deliver sends everything written to the outbox so far, now: it waits for the work the service
// does after answering (a reset request is queued then), and runs the sender until nothing is
// due. Every message must be accepted on the first attempt.
func (m *mailbox) deliver(t *testing.T) {
	t.Helper()
	m.ts.svc.Wait()
	for {
		r, err := m.sender.SendDue(t.Context())
		if err != nil {
			t.Fatalf("send due mail: %v", err)
		}
		if r.Retried+r.Failed > 0 {
			t.Fatalf("mail not delivered: %+v", r)
		}
		m.sent += r.Sent
		if r.Claimed == 0 {
			break
		}
	}
	if n := m.ts.db.Count(t, "SELECT COUNT(*) FROM mail_outbox WHERE sent_at IS NULL"); n != 0 {
		t.Fatalf("%d messages are still waiting in the outbox", n)
	}
}

// take delivers what is due and returns the messages to addr that no earlier take returned,
// oldest first.
func (m *mailbox) take(t *testing.T, addr string) []*mailpit.Message {
	t.Helper()
	m.deliver(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	all, err := m.srv.WaitForMessages(ctx, m.sent)
	if err != nil {
		t.Fatal(err)
	}
	var out []*mailpit.Message
	for i := len(all) - 1; i >= 0; i-- { // Mailpit lists the newest first
		s := all[i]
		if m.seen[s.ID] || !slices.ContainsFunc(s.To, func(a mailpit.Address) bool { return strings.EqualFold(a.Address, addr) }) {
			continue
		}
		m.seen[s.ID] = true
		full, err := m.srv.Message(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, full)
	}
	return out
}

// expect takes the new mail to addr, which must be exactly one message with each subject given
// (none when no subject is), and returns them by subject.
func (m *mailbox) expect(t *testing.T, addr string, subjects ...string) map[string]*mailpit.Message {
	t.Helper()
	got := m.take(t, addr)
	bySubject := map[string]*mailpit.Message{}
	var have []string
	for _, msg := range got {
		have = append(have, msg.Subject)
		bySubject[msg.Subject] = msg
	}
	slices.Sort(have)
	want := slices.Clone(subjects)
	slices.Sort(want)
	if !slices.Equal(have, want) {
		t.Fatalf("new mail to %s: %q, want %q", addr, have, want)
	}
	return bySubject
}

// expectOne takes the new mail to addr, which must be one message with subject.
func (m *mailbox) expectOne(t *testing.T, addr, subject string) *mailpit.Message {
	t.Helper()
	return m.expect(t, addr, subject)[subject]
}

// expectNone: no new mail to addr.
func (m *mailbox) expectNone(t *testing.T, addr string) {
	t.Helper()
	m.expect(t, addr)
}

// total is how many messages Mailpit holds, after delivering what is due.
func (m *mailbox) total(t *testing.T) int {
	t.Helper()
	m.deliver(t)
	msgs, err := m.srv.Messages(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return len(msgs)
}

// The subjects of the messages the flows send.
const (
	subjectReset          = "Reset your Gatehouse password"
	subjectPasswordChange = "Your Gatehouse password was changed"
	subjectVerify         = "Confirm your email address for Gatehouse"
	subjectConfirmChange  = "Confirm your new email address for Gatehouse"
	subjectEmailChanged   = "Your Gatehouse email address was changed"
	subjectNewSignIn      = "New sign-in to your Gatehouse account"
	subjectReplay         = "A device was signed out of your Gatehouse account"
)

var urlPattern = regexp.MustCompile(`https?://[^\s<>"]+`)

// linkTo is the one link to path in the text body of msg, as a path and query to request on the
// test server: it must be an absolute URL on the server's base URL, and the HTML body must carry
// the same link.
func (m *mailbox) linkTo(t *testing.T, msg *mailpit.Message, path string) string {
	t.Helper()
	var found []string
	for _, raw := range urlPattern.FindAllString(msg.Text, -1) {
		u, err := url.Parse(raw)
		if err == nil && u.Path == path {
			found = append(found, raw)
		}
	}
	if len(found) != 1 {
		t.Fatalf("links to %s in %q: %q, want one\n%s", path, msg.Subject, found, msg.Text)
	}
	link := found[0]
	rel, ok := strings.CutPrefix(link, m.ts.URL+"/")
	if !ok {
		t.Fatalf("link %q is not on the base URL %s", link, m.ts.URL)
	}
	if !strings.Contains(msg.HTML, `href="`+strings.ReplaceAll(link, "&", "&amp;")+`"`) {
		t.Fatalf("the HTML body of %q lacks the link %s", msg.Subject, link)
	}
	return "/" + rel
}

// tokenOf is the token in a link's query.
func tokenOf(t testing.TB, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	token := u.Query().Get("token")
	if token == "" {
		t.Fatalf("link %q carries no token", link)
	}
	return token
}

// headers reads the headers of a message as it arrived over SMTP.
func (m *mailbox) headers(t *testing.T, msg *mailpit.Message) netmail.Header {
	t.Helper()
	raw, err := m.srv.Raw(t.Context(), msg.ID)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("read raw message: %v", err)
	}
	return parsed.Header
}

// claims are the payload of a JWT, read without checking it (the server checks it; a test reads
// what it says).
func claims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(payload, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// expectAllTaken: every message Mailpit holds was taken by a test, so none went to an address
// no test looked at.
func (m *mailbox) expectAllTaken(t *testing.T) {
	t.Helper()
	m.deliver(t)
	msgs, err := m.srv.Messages(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range msgs {
		if !m.seen[s.ID] {
			t.Fatalf("unexpected mail to %+v: %q", s.To, s.Subject)
		}
	}
}

// signUp creates an account on the sign-up page, with the test password and a display name.
func (c *client) signUp(email string) *response {
	return c.signUpAs(email, "New Person")
}

func (c *client) signUpAs(email, displayName string) *response {
	return c.page("/signup", "/signup", url.Values{"email": {email}, "display_name": {displayName},
		"password": {testPassword}, "password_confirm": {testPassword}})
}

// getBearer is a GET with an access token.
func (c *client) getBearer(path, access string) *response {
	return c.do("GET", path, nil, bearer(access))
}
