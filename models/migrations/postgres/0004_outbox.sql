-- The mail outbox: a message is written in the same transaction as the action it tells about, so
-- nothing is sent for an action that rolled back and nothing is lost when the SMTP server is down.
-- The background sender claims due rows (pushing next_attempt_at forward as a lease), sends them,
-- and marks each sent, due again later, or failed. Bodies are cleared once a row is sent or
-- failed: they may carry a link token, which is stored nowhere else in the clear.
CREATE TABLE mail_outbox (
    id              BIGSERIAL PRIMARY KEY,
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    recipient_name  TEXT NOT NULL DEFAULT '',
    subject         TEXT NOT NULL,
    text_body       TEXT NOT NULL,
    html_body       TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    sent_at         TIMESTAMPTZ,
    failed_at       TIMESTAMPTZ,
    last_error      TEXT NOT NULL DEFAULT ''
);
-- What the sender claims: pending rows by due time.
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at, id) WHERE sent_at IS NULL AND failed_at IS NULL;
-- What prune deletes: finished rows by age.
CREATE INDEX mail_outbox_sent_at ON mail_outbox (sent_at) WHERE sent_at IS NOT NULL;
CREATE INDEX mail_outbox_failed_at ON mail_outbox (failed_at) WHERE failed_at IS NOT NULL;
