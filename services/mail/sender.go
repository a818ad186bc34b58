package mail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gatehouse/models"
)

// Config tunes the Sender. Only From is required; a zero value takes the default beside it.
type Config struct {
	From         string        // GATEHOUSE_MAIL_FROM, e.g. "Gatehouse <no-reply@example.com>"
	BatchSize    int           // messages claimed at once (10)
	PollInterval time.Duration // how often to look for due messages when nothing calls Notify (5s)
	// Lease is how long a claimed batch is held: a batch its sender did not finish (it died) is
	// due again after it. It must exceed a batch's sending time, BatchSize × the transport's
	// timeout, or a slow batch may be sent twice (10m).
	Lease       time.Duration
	FirstRetry  time.Duration // wait after a first failed attempt, doubled after each further one (1s)
	MaxRetry    time.Duration // longest wait between attempts (5m)
	GiveUpAfter time.Duration // a message not delivered this long after it was enqueued fails (24h)
}

func (c *Config) setDefaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = 10
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 5 * time.Second
	}
	if c.Lease <= 0 {
		c.Lease = 10 * time.Minute
	}
	if c.FirstRetry <= 0 {
		c.FirstRetry = time.Second
	}
	if c.MaxRetry <= 0 {
		c.MaxRetry = 5 * time.Minute
	}
	if c.GiveUpAfter <= 0 {
		c.GiveUpAfter = 24 * time.Hour
	}
}

// Deps are what the Sender works with.
type Deps struct {
	Store     *models.Store
	Transport Transport        // NewTransport(GATEHOUSE_SMTP_URL, log)
	Now       func() time.Time // the clock of Date headers, due times, backoff and giving up
	Random    io.Reader        // for Message-IDs: crypto/rand.Reader
	Log       *slog.Logger
	Metrics   prometheus.Registerer // where gatehouse_mail_* are registered; nil registers nothing
}

// Sender keeps the outbox: flows Enqueue messages in their transactions and Notify it after they
// commit; Run, in the background, delivers what is due, retrying with capped exponential backoff
// while the server is away, and gives up on a message (an Error log line and
// gatehouse_mail_failed_total) when the server refuses it for good or after GiveUpAfter.
//
// Delivery is at least once: a sender that dies after sending and before recording it sends the
// message again when the lease runs out, with the same Message-ID. Several Senders, in one
// process or many, may share a database: each message is claimed by one at a time.
type Sender struct {
	cfg       Config
	from      Address
	store     *models.Store
	transport Transport
	now       func() time.Time
	random    io.Reader
	log       *slog.Logger
	wake      chan struct{}

	sent, failed, retries prometheus.Counter
}

// markTimeout bounds recording an outcome, which is done even after Run's context ends: a message
// sent and not recorded is sent again.
const markTimeout = 10 * time.Second

// NewSender checks cfg.From and registers the metrics.
func NewSender(cfg Config, deps Deps) (*Sender, error) {
	cfg.setDefaults()
	from, err := ParseFrom(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("GATEHOUSE_MAIL_FROM: %w", err)
	}
	if deps.Store == nil || deps.Transport == nil || deps.Now == nil || deps.Random == nil || deps.Log == nil {
		return nil, errors.New("mail sender: Store, Transport, Now, Random and Log are required")
	}
	s := &Sender{
		cfg: cfg, from: from, store: deps.Store, transport: deps.Transport, now: deps.Now,
		random: deps.Random, log: deps.Log, wake: make(chan struct{}, 1),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_mail_sent_total", Help: "Messages the mail server accepted (or, without GATEHOUSE_SMTP_URL, logged).",
		}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_mail_failed_total", Help: "Messages given up on: refused by the mail server for good, or undelivered for too long.",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_mail_retries_total", Help: "Delivery attempts that failed, or were put off while the mail server was away, and will be tried again.",
		}),
	}
	if deps.Metrics != nil {
		depth := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gatehouse_mail_queue_depth", Help: "Messages waiting in the outbox, neither sent nor failed (-1 when the database did not answer).",
		}, s.queueDepth)
		for _, c := range []prometheus.Collector{s.sent, s.failed, s.retries, depth} {
			if err := deps.Metrics.Register(c); err != nil {
				return nil, fmt.Errorf("register mail metrics: %w", err)
			}
		}
	}
	return s, nil
}

func (s *Sender) queueDepth() float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := s.store.PendingMail(ctx)
	if err != nil {
		return -1
	}
	return float64(n)
}

// Enqueue writes m into the outbox through tx, the Store that InTx passes, so that it is sent if
// and only if the transaction commits. It checks m first (errors wrap ErrInvalidMessage) and
// gives it its Date and Message-ID. Call Notify once the transaction has committed.
func (s *Sender) Enqueue(ctx context.Context, tx *models.Store, m Message) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("enqueue %s mail: %w", m.Kind, err)
	}
	messageID, err := newMessageID(s.random, s.from)
	if err != nil {
		return fmt.Errorf("enqueue %s mail: %w", m.Kind, err)
	}
	now := s.now()
	return tx.EnqueueMail(ctx, &models.OutboxMessage{
		Kind: m.Kind, Recipient: m.To.Address, RecipientName: m.To.Name, Subject: m.Subject,
		TextBody: m.Text, HTMLBody: m.HTML, MessageID: messageID, CreatedAt: now, NextAttemptAt: now,
	})
}

// Notify wakes Run to send what was just committed, instead of at its next poll. It never blocks.
func (s *Sender) Notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run delivers due messages until ctx ends: at once, whenever Notify is called, and every
// PollInterval (which picks up messages other processes enqueued, and retries falling due).
func (s *Sender) Run(ctx context.Context) {
	poll := time.NewTicker(s.cfg.PollInterval)
	defer poll.Stop()
	databaseDown := false
	for {
		for ctx.Err() == nil {
			r, err := s.SendDue(ctx)
			switch {
			case err != nil && ctx.Err() == nil && !databaseDown:
				s.log.Warn("mail sender cannot read the outbox; will try again", "error", err)
				databaseDown = true
			case err == nil && databaseDown:
				s.log.Info("mail sender reads the outbox again")
				databaseDown = false
			}
			// A full batch that made progress suggests more are due; otherwise wait.
			if err != nil || r.Claimed < s.cfg.BatchSize || r.Sent+r.Failed == 0 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-poll.C:
		}
	}
}

// Result counts what one SendDue did.
type Result struct {
	Claimed int // messages due and claimed
	Sent    int // accepted by the server
	Retried int // failed, or put off while the server is away, and due again later
	Failed  int // given up on
}

// SendDue claims one batch of due messages and sends each, in order. When the server cannot be
// reached, the rest of the batch is put off with it rather than each waiting for a timeout. When
// ctx ends, the messages not yet tried are released at once for another sender. It returns an
// error only when the outbox cannot be read; outcomes it could not record are logged.
func (s *Sender) SendDue(ctx context.Context) (Result, error) {
	now := s.now()
	batch, err := s.store.ClaimMail(ctx, now, now.Add(s.cfg.Lease), s.cfg.BatchSize)
	if err != nil {
		return Result{}, fmt.Errorf("send due mail: %w", err)
	}
	r := Result{Claimed: len(batch)}
	// Outcomes are recorded even once ctx has ended: a message sent and not recorded would be
	// sent again when its lease runs out.
	record := context.WithoutCancel(ctx)
	var unavailable error
	for i, row := range batch {
		if ctx.Err() != nil {
			s.release(record, batch[i:])
			break
		}
		if unavailable != nil {
			s.retryOrGiveUp(record, row, unavailable, &r)
			continue
		}
		err := s.deliver(ctx, row)
		if err != nil && ctx.Err() != nil { // stopped mid-conversation: whether it went out is unknown
			s.release(record, batch[i:])
			break
		}
		switch {
		case err == nil:
			r.Sent++
			s.markSent(record, row)
		case Permanent(err):
			r.Failed++
			s.giveUp(record, row, err)
		default:
			if serverUnavailable(err) {
				unavailable = err
				if rest := len(batch) - i - 1; rest > 0 {
					s.log.Warn("mail server unavailable: putting off the rest of the batch", "messages", rest, "error", describe(err))
				}
			}
			s.retryOrGiveUp(record, row, err, &r)
		}
	}
	return r, nil
}

// deliver composes one outbox row and hands it to the transport. A row that fails Validate
// (written by something other than Enqueue) is a permanent error.
func (s *Sender) deliver(ctx context.Context, row models.OutboxMessage) error {
	m := Message{
		Kind: row.Kind, To: Address{Name: row.RecipientName, Address: row.Recipient},
		Subject: row.Subject, Text: row.TextBody, HTML: row.HTMLBody,
	}
	if err := m.Validate(); err != nil {
		return err
	}
	data, err := compose(s.from, m, row.MessageID, row.CreatedAt)
	if err != nil {
		return err
	}
	return s.transport.Send(ctx, Envelope{From: s.from.Address, To: m.To.Address, Message: m, Data: data})
}

func (s *Sender) markSent(ctx context.Context, row models.OutboxMessage) {
	s.sent.Inc()
	ctx, cancel := context.WithTimeout(ctx, markTimeout)
	defer cancel()
	if err := s.store.MarkMailSent(ctx, row.ID, s.now()); err != nil {
		// It will be sent again when its lease runs out, unless another sender recorded it.
		s.log.Error("mail sent but not recorded as sent", "id", row.ID, "kind", row.Kind, "error", err)
		return
	}
	s.log.Info("mail sent", "id", row.ID, "kind", row.Kind, "attempts", row.Attempts)
}

// backoff is the wait after the attempt-th failed attempt: FirstRetry doubled attempt-1 times,
// at most MaxRetry.
func (s *Sender) backoff(attempt int) time.Duration {
	wait := s.cfg.FirstRetry
	for i := 1; i < attempt && wait < s.cfg.MaxRetry; i++ {
		wait *= 2
	}
	return min(wait, s.cfg.MaxRetry)
}

func (s *Sender) retryOrGiveUp(ctx context.Context, row models.OutboxMessage, cause error, r *Result) {
	now := s.now()
	if now.Sub(row.CreatedAt) >= s.cfg.GiveUpAfter {
		r.Failed++
		s.giveUp(ctx, row, fmt.Errorf("not delivered in %s: %w", s.cfg.GiveUpAfter, cause))
		return
	}
	r.Retried++
	s.retries.Inc()
	next := now.Add(s.backoff(row.Attempts))
	ctx, cancel := context.WithTimeout(ctx, markTimeout)
	defer cancel()
	if err := s.store.MarkMailRetry(ctx, row.ID, row.Attempts, next, describe(cause)); err != nil {
		s.log.Warn("mail not delivered, and its next attempt not recorded (it falls due when its lease runs out)",
			"id", row.ID, "kind", row.Kind, "cause", describe(cause), "error", err)
		return
	}
	s.log.Warn("mail not delivered yet; will try again", "id", row.ID, "kind", row.Kind,
		"attempts", row.Attempts, "next_attempt_at", next, "error", describe(cause))
}

// giveUp marks a message failed: the server refused it for good, or it waited too long. The log
// line names the message and why, never its body.
func (s *Sender) giveUp(ctx context.Context, row models.OutboxMessage, cause error) {
	s.failed.Inc()
	ctx, cancel := context.WithTimeout(ctx, markTimeout)
	defer cancel()
	if err := s.store.MarkMailFailed(ctx, row.ID, row.Attempts, s.now(), describe(cause)); err != nil {
		s.log.Error("mail undeliverable, and not recorded as failed", "id", row.ID, "kind", row.Kind, "cause", describe(cause), "error", err)
		return
	}
	s.log.Error("mail undeliverable: gave up", "id", row.ID, "kind", row.Kind, "attempts", row.Attempts, "error", describe(cause))
}

// release makes messages claimed and not tried due again now, for another sender (the process is
// stopping). Their attempt still counts, which only lengthens a later backoff a little.
func (s *Sender) release(ctx context.Context, rows []models.OutboxMessage) {
	ctx, cancel := context.WithTimeout(ctx, markTimeout)
	defer cancel()
	now := s.now()
	for _, row := range rows {
		if err := s.store.MarkMailRetry(ctx, row.ID, row.Attempts, now, row.LastError); err != nil {
			s.log.Warn("mail claimed and not released (it falls due when its lease runs out)", "id", row.ID, "error", err)
		}
	}
}
