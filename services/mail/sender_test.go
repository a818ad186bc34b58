package mail_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	netmail "net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gatehouse/models"
	"gatehouse/models/testdb"
	"gatehouse/services/clock"
	"gatehouse/services/mail"
	"gatehouse/services/mail/mailpit"
	mailviews "gatehouse/views/mail"
)

// The outbox and the background sender, against real databases and a real SMTP server.

const testFrom = "Gatehouse <no-reply@gatehouse.test>"

var start = time.Date(2026, 3, 2, 14, 5, 0, 0, time.UTC)

// logBuffer is a log that several goroutines write (Run logs from its own).
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines are the JSON log lines written so far.
func (b *logBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// rig is one Sender with its clock, metrics and log.
type rig struct {
	db      *testdb.DB
	store   *models.Store
	clock   *clock.Manual
	sender  *mail.Sender
	metrics *prometheus.Registry
	log     *logBuffer
}

func newRig(t *testing.T, db *testdb.DB, store *models.Store, transport mail.Transport, cfg mail.Config) *rig {
	t.Helper()
	r := &rig{db: db, store: store, clock: clock.NewManual(start), metrics: prometheus.NewRegistry(), log: &logBuffer{}}
	cfg.From = testFrom
	if cfg.PollInterval == 0 {
		cfg.PollInterval = time.Hour // only Notify wakes Run: the tests move the clock, not the wall
	}
	var err error
	r.sender, err = mail.NewSender(cfg, mail.Deps{
		Store: store, Transport: transport, Now: r.clock.Now, Random: rand.Reader,
		Log: slog.New(slog.NewJSONHandler(r.log, nil)), Metrics: r.metrics,
	})
	if err != nil {
		t.Fatalf("NewSender: %v", err)
	}
	return r
}

func smtpTo(t *testing.T, srv *mailpit.Server) mail.Transport {
	t.Helper()
	return smtpTransport(t, srv.SMTPURL(), nil)
}

// resetMessage is a password-reset message for who, rendered by views/mail.
func resetMessage(t *testing.T, who string) mail.Message {
	t.Helper()
	r, err := mailviews.Render(t.Context(), mailviews.PasswordReset{
		Email: who + "@example.com", Link: "https://gatehouse.test/password/reset?token=secret-" + who, ValidFor: 30 * time.Minute,
	})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return mail.Message{Kind: r.Kind, To: mail.Address{Name: "Zoë " + who, Address: who + "@example.com"},
		Subject: r.Subject, Text: r.Text, HTML: r.HTML}
}

// enqueue writes m in a transaction that commits, and notifies the sender.
func (r *rig) enqueue(t *testing.T, m mail.Message) {
	t.Helper()
	err := r.store.InTx(t.Context(), func(tx *models.Store) error { return r.sender.Enqueue(t.Context(), tx, m) })
	if err != nil {
		t.Fatalf("enqueue to %s: %v", m.To.Address, err)
	}
	r.sender.Notify()
}

func (r *rig) sendDue(t *testing.T) mail.Result {
	t.Helper()
	res, err := r.sender.SendDue(t.Context())
	if err != nil {
		t.Fatalf("SendDue: %v", err)
	}
	return res
}

// run runs the sender in the background until the test ends or the returned stop is called.
func (r *rig) run(t *testing.T) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.sender.Run(ctx)
	}()
	stop = func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return stop
}

// metric reads a counter or gauge of the sender's registry.
func (r *rig) metric(t *testing.T, name string) float64 {
	t.Helper()
	families, err := r.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		m := f.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func (r *rig) rows(t *testing.T) []models.OutboxMessage {
	t.Helper()
	var rows []models.OutboxMessage
	if err := r.db.Store.DB().Order("id").Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	return rows
}

// eventually polls cond until it holds, failing the test after a generous deadline: it waits for
// another goroutine or process to get somewhere, never for time to pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFor waits until Mailpit holds n messages.
func waitFor(t *testing.T, srv *mailpit.Server, n int) []mailpit.Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	msgs, err := srv.WaitForMessages(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// Mailpit adds these to what it received.
var receivedHeaders = []string{"Received", "Return-Path"}

// composedHeaders are the headers a message is sent with, no more.
var composedHeaders = []string{"Auto-Submitted", "Content-Type", "Date", "From", "Message-Id", "Mime-Version", "Subject", "To"}

func rawHeaderNames(t *testing.T, srv *mailpit.Server, id string) []string {
	t.Helper()
	raw, err := srv.Raw(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("read raw message: %v", err)
	}
	var names []string
	for name := range msg.Header {
		if !slices.Contains(receivedHeaders, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

func TestCommittedMessageIsDeliveredOnce(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		srv := mailpit.New(t, mailpit.Options{})
		r := newRig(t, db, db.Store, smtpTo(t, srv), mail.Config{})
		m := resetMessage(t, "ann")
		r.enqueue(t, m)
		if got := r.metric(t, "gatehouse_mail_queue_depth"); got != 1 {
			t.Errorf("queue depth after enqueue: %v, want 1", got)
		}

		if res := r.sendDue(t); res != (mail.Result{Claimed: 1, Sent: 1}) {
			t.Fatalf("SendDue: %+v, want one claimed and sent", res)
		}
		msgs := waitFor(t, srv, 1)
		got, err := srv.Message(ctx, msgs[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		row := r.rows(t)[0]
		if got.From == nil || got.From.Address != "no-reply@gatehouse.test" || got.From.Name != "Gatehouse" {
			t.Errorf("From %+v", got.From)
		}
		if len(got.To) != 1 || got.To[0] != (mailpit.Address{Name: m.To.Name, Address: m.To.Address}) {
			t.Errorf("To %+v, want only %+v", got.To, m.To)
		}
		if got.Subject != m.Subject {
			t.Errorf("Subject %q, want %q", got.Subject, m.Subject)
		}
		if "<"+got.MessageID+">" != row.MessageID || !strings.HasSuffix(row.MessageID, "@gatehouse.test>") {
			t.Errorf("Message-ID %q, stored %q: want the stored one, on the sender's domain", got.MessageID, row.MessageID)
		}
		if !got.Date.Equal(start) {
			t.Errorf("Date %v, want the enqueue time %v", got.Date, start)
		}
		if text := strings.ReplaceAll(got.Text, "\r\n", "\n"); strings.TrimSpace(text) != strings.TrimSpace(m.Text) {
			t.Errorf("text part:\n%s\nwant:\n%s", got.Text, m.Text)
		}
		if !strings.Contains(got.Text, "https://gatehouse.test/password/reset?token=secret-ann") {
			t.Errorf("text part lacks the link:\n%s", got.Text)
		}
		if strings.TrimSpace(got.HTML) != strings.TrimSpace(m.HTML) {
			t.Errorf("HTML part:\n%s\nwant:\n%s", got.HTML, m.HTML)
		}
		if names := rawHeaderNames(t, srv, msgs[0].ID); !slices.Equal(names, composedHeaders) {
			t.Errorf("headers %v, want %v", names, composedHeaders)
		}

		if row.SentAt == nil || row.TextBody != "" || row.HTMLBody != "" || row.Attempts != 1 {
			t.Errorf("outbox row after sending: sent_at %v, attempts %d, bodies kept %t", row.SentAt, row.Attempts, row.TextBody+row.HTMLBody != "")
		}
		r.clock.Advance(time.Hour)
		if res := r.sendDue(t); res.Claimed != 0 {
			t.Errorf("SendDue again: %+v, want nothing", res)
		}
		if msgs, _ := srv.Messages(ctx); len(msgs) != 1 {
			t.Errorf("%d messages in the inbox, want 1", len(msgs))
		}
		if sent, depth := r.metric(t, "gatehouse_mail_sent_total"), r.metric(t, "gatehouse_mail_queue_depth"); sent != 1 || depth != 0 {
			t.Errorf("gatehouse_mail_sent_total %v, queue depth %v; want 1 and 0", sent, depth)
		}
		if logs := r.log.String(); strings.Contains(logs, "secret-ann") {
			t.Errorf("the SMTP path logged a body:\n%s", logs)
		}
	})
}

func TestRolledBackMessageIsNeverSent(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		srv := mailpit.New(t, mailpit.Options{})
		r := newRig(t, db, db.Store, smtpTo(t, srv), mail.Config{})
		stop := r.run(t)

		errAction := errors.New("the action failed after writing its mail")
		err := db.Store.InTx(ctx, func(tx *models.Store) error {
			if err := r.sender.Enqueue(ctx, tx, resetMessage(t, "rolled-back")); err != nil {
				return err
			}
			return errAction
		})
		if !errors.Is(err, errAction) {
			t.Fatalf("InTx: %v", err)
		}
		r.sender.Notify()
		r.enqueue(t, resetMessage(t, "committed"))

		waitFor(t, srv, 1)
		eventually(t, "the committed message is recorded as sent", func() bool {
			rows := r.rows(t)
			return len(rows) == 1 && rows[0].SentAt != nil
		})
		stop()
		msgs, err := srv.Messages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 1 || mailpit.Find(msgs, "committed@example.com") == nil {
			t.Errorf("inbox %+v, want only the committed message", msgs)
		}
		if n := db.Count(t, "SELECT COUNT(*) FROM mail_outbox"); n != 1 {
			t.Errorf("%d outbox rows, want 1: the rolled-back one was never written", n)
		}
	})
}

// TestDeliveryThroughAnOutage: messages enqueued while the SMTP server is down wait, with backoff,
// and each arrives exactly once after it comes back, with the same Message-ID it was given.
func TestDeliveryThroughAnOutage(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		srv := mailpit.New(t, mailpit.Options{})
		if err := srv.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		r := newRig(t, db, db.Store, smtpTo(t, srv), mail.Config{})
		const n = 5
		for i := range n {
			r.enqueue(t, resetMessage(t, fmt.Sprintf("user%d", i)))
		}
		stop := r.run(t)

		// Every message is tried (or put off with the first of its batch) and waits 1 s.
		eventually(t, "every message has had an attempt", func() bool {
			for _, row := range r.rows(t) {
				if row.Attempts != 1 || row.LastError == "" || !row.NextAttemptAt.Equal(start.Add(time.Second)) {
					return false
				}
			}
			return true
		})
		if msg := r.rows(t)[0].LastError; !strings.Contains(msg, "connect") {
			t.Errorf("last_error %q, want the connection failure", msg)
		}
		// Still down a second later: each waits 2 s more.
		r.clock.Advance(time.Second)
		r.sender.Notify()
		eventually(t, "every message has had a second attempt", func() bool {
			for _, row := range r.rows(t) {
				if row.Attempts != 2 || !row.NextAttemptAt.Equal(start.Add(3*time.Second)) {
					return false
				}
			}
			return true
		})

		if err := srv.Start(ctx); err != nil {
			t.Fatal(err)
		}
		r.clock.Advance(2 * time.Second)
		r.sender.Notify()
		waitFor(t, srv, n)
		eventually(t, "every message is recorded as sent", func() bool {
			pending, err := db.Store.PendingMail(ctx)
			return err == nil && pending == 0
		})
		stop()

		// Long after, nothing is due again.
		r.clock.Advance(24 * time.Hour)
		if res := r.sendDue(t); res.Claimed != 0 {
			t.Errorf("SendDue a day later: %+v, want nothing", res)
		}
		msgs, err := srv.Messages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got, want []string
		for _, m := range msgs {
			got = append(got, "<"+m.MessageID+">")
		}
		for _, row := range r.rows(t) {
			want = append(want, row.MessageID)
			if row.SentAt == nil || row.FailedAt != nil {
				t.Errorf("row %d: sent_at %v, failed_at %v", row.ID, row.SentAt, row.FailedAt)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("Message-IDs received %v, want each of %v exactly once", got, want)
		}
		if sent, retries, failed := r.metric(t, "gatehouse_mail_sent_total"), r.metric(t, "gatehouse_mail_retries_total"),
			r.metric(t, "gatehouse_mail_failed_total"); sent != n || retries != 2*n || failed != 0 {
			t.Errorf("sent %v, retries %v, failed %v; want %d, %d, 0", sent, retries, failed, n, 2*n)
		}
	})
}

// TestRunDrainsFullBatches: one Notify sends everything due, batch after batch.
func TestRunDrainsFullBatches(t *testing.T) {
	db := testdb.SQLite(t)
	srv := mailpit.New(t, mailpit.Options{})
	r := newRig(t, db, db.Store, smtpTo(t, srv), mail.Config{BatchSize: 2})
	const n = 5
	for i := range n {
		err := db.Store.InTx(t.Context(), func(tx *models.Store) error {
			return r.sender.Enqueue(t.Context(), tx, resetMessage(t, fmt.Sprintf("user%d", i)))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	r.run(t) // its first pass, and no Notify: PollInterval is an hour
	waitFor(t, srv, n)
	eventually(t, "every message is recorded as sent", func() bool {
		pending, err := db.Store.PendingMail(t.Context())
		return err == nil && pending == 0
	})
}

// TestGivesUpAfterADay: while the server stays down, the waits double up to 5 minutes; a message
// still undelivered a day after it was enqueued fails, with an Error log line that holds no body.
func TestGivesUpAfterADay(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens there: connection refused
		r := newRig(t, db, db.Store, smtpTransport(t, "smtp://"+addr, nil), mail.Config{})
		r.enqueue(t, resetMessage(t, "ann"))

		var waits []time.Duration
		for attempt := 1; ; attempt++ {
			res := r.sendDue(t)
			if res.Failed == 1 {
				break
			}
			if res != (mail.Result{Claimed: 1, Retried: 1}) || attempt > 400 {
				t.Fatalf("attempt %d: %+v, want one retried", attempt, res)
			}
			wait := r.rows(t)[0].NextAttemptAt.Sub(r.clock.Now())
			waits = append(waits, wait)
			r.clock.Advance(wait)
		}
		want := []time.Duration{1, 2, 4, 8, 16, 32, 64, 128, 256, 300}
		for i := range want {
			want[i] *= time.Second
		}
		if len(waits) < len(want) || !slices.Equal(waits[:len(want)], want) || slices.Max(waits) != 5*time.Minute {
			t.Errorf("waits %v…, want %v and then 5m", waits[:min(len(waits), 12)], want)
		}
		row := r.rows(t)[0]
		if row.FailedAt == nil || row.SentAt != nil || row.TextBody != "" || !strings.Contains(row.LastError, "not delivered in 24h") {
			t.Errorf("row: failed_at %v, sent_at %v, body kept %t, last_error %q", row.FailedAt, row.SentAt, row.TextBody != "", row.LastError)
		}
		if age := row.FailedAt.Sub(start); age < 24*time.Hour || age > 24*time.Hour+5*time.Minute {
			t.Errorf("failed %v after enqueue, want about a day", age)
		}
		if got := r.metric(t, "gatehouse_mail_failed_total"); got != 1 {
			t.Errorf("gatehouse_mail_failed_total %v, want 1", got)
		}
		var errorLines int
		for _, line := range r.log.lines(t) {
			if line["level"] == "ERROR" {
				errorLines++
				if line["msg"] != "mail undeliverable: gave up" || line["kind"] != "password_reset" {
					t.Errorf("error line %v", line)
				}
			}
		}
		if errorLines != 1 {
			t.Errorf("%d Error lines, want 1", errorLines)
		}
		if logs := r.log.String(); strings.Contains(logs, "secret-ann") || strings.Contains(logs, "choose a new password") {
			t.Errorf("the log holds the body:\n%s", logs)
		}
	})
}

// TestRefusedRecipientFailsAtOnce: a 5xx to RCPT TO is not retried.
func TestRefusedRecipientFailsAtOnce(t *testing.T) {
	db := testdb.SQLite(t)
	srv := mailpit.New(t, mailpit.Options{AllowedRecipients: `^ok@`})
	r := newRig(t, db, db.Store, smtpTo(t, srv), mail.Config{})
	refused, ok := resetMessage(t, "refused"), resetMessage(t, "ok")
	r.enqueue(t, refused)
	r.enqueue(t, ok)
	if res := r.sendDue(t); res != (mail.Result{Claimed: 2, Sent: 1, Failed: 1}) {
		t.Errorf("SendDue: %+v, want one sent and one failed", res)
	}
	rows := r.rows(t)
	if rows[0].FailedAt == nil || !strings.Contains(rows[0].LastError, "550") || rows[1].SentAt == nil {
		t.Errorf("rows: %+v", rows)
	}
	waitFor(t, srv, 1)
}

// TestHeaderInjectionChangesNothing: CR or LF in a name, an address or the subject is refused at
// enqueue, and nothing is written; characters that are only awkward (quotes, angle brackets,
// commas, encoded-word look-alikes) reach the recipient as the name, with the usual headers and
// one recipient. A row written around Enqueue with a line break is refused by the sender too.
func TestHeaderInjectionChangesNothing(t *testing.T) {
	ctx := t.Context()
	db := testdb.SQLite(t)
	srv := mailpit.New(t, mailpit.Options{})
	r := newRig(t, db, db.Store, smtpTo(t, srv), mail.Config{})

	for name, change := range map[string]func(*mail.Message){
		"CR LF in the name":         func(m *mail.Message) { m.To.Name = "Ann\r\nBcc: evil@example.com" },
		"LF in the name":            func(m *mail.Message) { m.To.Name = "Ann\nBcc: evil@example.com" },
		"CR in the name":            func(m *mail.Message) { m.To.Name = "Ann\rBcc: evil@example.com" },
		"CR LF in the subject":      func(m *mail.Message) { m.Subject = "Hello\r\nBcc: evil@example.com" },
		"LF in the subject":         func(m *mail.Message) { m.Subject = "Hello\nBcc: evil@example.com" },
		"CR LF in the address":      func(m *mail.Message) { m.To.Address = "ann@example.com\r\nBcc: evil@example.com" },
		"a second address":          func(m *mail.Message) { m.To.Address = "ann@example.com, evil@example.com" },
		"a name inside the address": func(m *mail.Message) { m.To.Address = "Ann <evil@example.com>" },
	} {
		m := resetMessage(t, "ann")
		change(&m)
		err := db.Store.InTx(ctx, func(tx *models.Store) error { return r.sender.Enqueue(ctx, tx, m) })
		if !errors.Is(err, mail.ErrInvalidMessage) {
			t.Errorf("%s: Enqueue: %v, want ErrInvalidMessage", name, err)
		}
	}
	if n := db.Count(t, "SELECT COUNT(*) FROM mail_outbox"); n != 0 {
		t.Fatalf("%d rows written by refused messages", n)
	}

	wantSubject := func(name string) string { return "=?utf-8?q?Hi=0D=0ABcc:_evil@example.com?= " + name }
	awkward := []string{
		`Ann "the admin" <evil@example.com>, Bcc: evil@example.com`,
		"=?utf-8?q?Ann=0D=0ABcc:_evil@example.com?=",
		`Zoë \ "Ω" <evil@example.com>`,
	}
	for i, name := range awkward {
		m := resetMessage(t, fmt.Sprintf("awkward%d", i))
		m.To.Name = name
		m.Subject = wantSubject(name)
		r.enqueue(t, m)
	}
	// Written around Enqueue, as a bug elsewhere might: the sender refuses it.
	bad := &models.OutboxMessage{Kind: "password_reset", Recipient: "ann@example.com", RecipientName: "Ann\r\nBcc: evil@example.com",
		Subject: "Hi", TextBody: "x", MessageID: "<bad@gatehouse.test>", CreatedAt: start}
	if err := db.Store.EnqueueMail(ctx, bad); err != nil {
		t.Fatal(err)
	}
	if res := r.sendDue(t); res != (mail.Result{Claimed: len(awkward) + 1, Sent: len(awkward), Failed: 1}) {
		t.Fatalf("SendDue: %+v", res)
	}
	msgs := waitFor(t, srv, len(awkward))
	for i, name := range awkward {
		summary := mailpit.Find(msgs, fmt.Sprintf("awkward%d@example.com", i))
		if summary == nil {
			t.Errorf("no message to awkward%d", i)
			continue
		}
		if names := rawHeaderNames(t, srv, summary.ID); !slices.Equal(names, composedHeaders) {
			t.Errorf("name %q: headers %v, want %v", name, names, composedHeaders)
		}
		// Mailpit shows one recipient at the address. (It decodes the name twice, so a name
		// that looks like an encoded word shows decoded: its display, not the header.)
		full, err := srv.Message(ctx, summary.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantAddress := fmt.Sprintf("awkward%d@example.com", i)
		if len(full.To) != 1 || full.To[0].Address != wantAddress {
			t.Errorf("name %q: Mailpit shows To %+v, want one recipient, %s", name, full.To, wantAddress)
		}
		// The header as it arrived, read once as RFC 5322 and 2047 say: the name and subject
		// given, one recipient.
		raw, err := srv.Raw(ctx, summary.ID)
		if err != nil {
			t.Fatal(err)
		}
		arrived, err := netmail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		to, err := arrived.Header.AddressList("To")
		if err != nil || len(to) != 1 || to[0].Name != name || to[0].Address != wantAddress {
			t.Errorf("name %q: To header %q reads %v, %v; want one recipient with that name", name, arrived.Header.Get("To"), to, err)
		}
		var dec mime.WordDecoder
		if subject, err := dec.DecodeHeader(arrived.Header.Get("Subject")); err != nil || subject != wantSubject(name) {
			t.Errorf("Subject header %q reads %q, %v; want %q", arrived.Header.Get("Subject"), subject, err, wantSubject(name))
		}
		headers, err := srv.Headers(ctx, summary.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(headers["Bcc"]) != 0 || len(headers["Cc"]) != 0 {
			t.Errorf("name %q: Bcc %v, Cc %v", name, headers["Bcc"], headers["Cc"])
		}
	}
	if mailpit.Find(msgs, "evil@example.com") != nil || len(msgs) != len(awkward) {
		t.Errorf("inbox %+v: want only the awkward messages, none to evil@example.com", msgs)
	}
}

// TestTwoSendersDeliverEachMessageOnce: two senders, each with its own connection pool, on one
// database (on PostgreSQL they claim with FOR UPDATE SKIP LOCKED), deliver every message once.
func TestTwoSendersDeliverEachMessageOnce(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *testdb.DB) {
		ctx := t.Context()
		srv := mailpit.New(t, mailpit.Options{})
		other, err := models.Open(db.URL, models.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { other.Close() })
		first := newRig(t, db, db.Store, smtpTo(t, srv), mail.Config{BatchSize: 3})
		second := newRig(t, db, other, smtpTo(t, srv), mail.Config{BatchSize: 3})
		second.clock = first.clock

		const n = 30
		for i := range n {
			first.enqueue(t, resetMessage(t, fmt.Sprintf("user%d", i)))
		}
		var wg sync.WaitGroup
		sent := make([]int, 2)
		errs := make(chan error, 2)
		for i, r := range []*rig{first, second} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					res, err := r.sender.SendDue(ctx)
					if err != nil {
						errs <- err
						return
					}
					if res.Claimed == 0 {
						return
					}
					sent[i] += res.Sent
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("SendDue: %v", err)
		}
		msgs := waitFor(t, srv, n)
		seen := map[string]int{}
		for _, m := range msgs {
			seen[m.MessageID]++
		}
		if len(msgs) != n || len(seen) != n {
			t.Errorf("%d messages with %d distinct Message-IDs arrived, want %d once each", len(msgs), len(seen), n)
		}
		if sent[0]+sent[1] != n {
			t.Errorf("the senders sent %d and %d, want %d in all", sent[0], sent[1], n)
		}
		t.Logf("first sender sent %d, second %d", sent[0], sent[1])
		if pending, err := db.Store.PendingMail(ctx); err != nil || pending != 0 {
			t.Errorf("PendingMail %d, %v; want 0", pending, err)
		}
	})
}

// TestLogTransportLogsTheText: without GATEHOUSE_SMTP_URL each message is logged, marked as not
// sent, with its text and links, and counts as sent.
func TestLogTransportLogsTheText(t *testing.T) {
	db := testdb.SQLite(t)
	logs := &logBuffer{}
	transport, err := mail.NewTransport("", slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, db, db.Store, transport, mail.Config{})
	r.enqueue(t, resetMessage(t, "ann"))
	if res := r.sendDue(t); res.Sent != 1 {
		t.Fatalf("SendDue: %+v", res)
	}
	lines := logs.lines(t)
	if len(lines) != 1 {
		t.Fatalf("log lines %v, want 1", lines)
	}
	line := lines[0]
	link := "https://gatehouse.test/password/reset?token=secret-ann"
	if line["msg"] != mail.LogNotSent || !strings.HasPrefix(mail.LogNotSent, "mail not sent (no GATEHOUSE_SMTP_URL)") {
		t.Errorf("msg %q", line["msg"])
	}
	if text, _ := line["text"].(string); !strings.Contains(text, link) || !strings.Contains(text, "choose a new password") {
		t.Errorf("text %q lacks the body and link", text)
	}
	if links, _ := line["links"].([]any); len(links) != 1 || links[0] != link {
		t.Errorf("links %v, want [%s]", line["links"], link)
	}
	if line["to"] != "ann@example.com" || line["kind"] != "password_reset" || line["subject"] != "Reset your Gatehouse password" {
		t.Errorf("line %v", line)
	}
	if r.rows(t)[0].SentAt == nil {
		t.Error("the logged message is not recorded as sent")
	}
}

// TestSenderStopsWithoutLosingClaims: messages claimed when Run's context ends are released
// for the next sender at once, not held for the lease.
func TestSenderStopsWithoutLosingClaims(t *testing.T) {
	db := testdb.SQLite(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		conn, err := ln.Accept()
		if err == nil {
			accepted <- conn // a server that never answers
		}
	}()
	cfg, err := mail.ParseSMTPURL("smtp://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Timeout = time.Hour
	r := newRig(t, db, db.Store, mail.NewSMTP(cfg), mail.Config{})
	r.enqueue(t, resetMessage(t, "ann"))
	r.enqueue(t, resetMessage(t, "bob"))
	stop := r.run(t)
	conn := <-accepted // the first message is in flight
	defer conn.Close()
	stop()
	for _, row := range r.rows(t) {
		if row.SentAt != nil || row.FailedAt != nil || !row.NextAttemptAt.Equal(start) {
			t.Errorf("row %d after stopping: due %v (want now, %v), sent %v, failed %v", row.ID, row.NextAttemptAt, start, row.SentAt, row.FailedAt)
		}
	}
	if got := r.metric(t, "gatehouse_mail_queue_depth"); got != 2 {
		t.Errorf("queue depth %v, want 2", got)
	}
}

func TestNewSenderRefusesABadFrom(t *testing.T) {
	db := testdb.SQLite(t)
	for _, from := range []string{"", "Gatehouse", "a@example.com, b@example.com", "Gate\r\nhouse <a@example.com>"} {
		_, err := mail.NewSender(mail.Config{From: from}, mail.Deps{Store: db.Store, Transport: mail.NewLogTransport(slog.Default()),
			Now: time.Now, Random: rand.Reader, Log: slog.Default()})
		if err == nil || !strings.HasPrefix(err.Error(), "GATEHOUSE_MAIL_FROM") || strings.Contains(err.Error(), "\n") {
			t.Errorf("NewSender(From %q): %v, want one line naming GATEHOUSE_MAIL_FROM", from, err)
		}
	}
	reg := prometheus.NewRegistry()
	deps := mail.Deps{Store: db.Store, Transport: mail.NewLogTransport(slog.Default()), Now: time.Now, Random: rand.Reader, Log: slog.Default(), Metrics: reg}
	if _, err := mail.NewSender(mail.Config{From: testFrom}, deps); err != nil {
		t.Fatal(err)
	}
	if _, err := mail.NewSender(mail.Config{From: testFrom}, deps); err == nil {
		t.Error("a second sender on the same registry: no error for the duplicate metrics")
	}
}
