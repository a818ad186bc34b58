-- Verified addresses, sign-in notices, and the single-use tokens that emailed links carry.
ALTER TABLE users ADD COLUMN email_verified_at DATETIME;
ALTER TABLE users ADD COLUMN notify_sign_ins BOOLEAN NOT NULL DEFAULT TRUE;

-- A link token (password reset, address verification, email change and its undo). Only its SHA-256
-- is kept. A newer token of one purpose supersedes the older ones of that user (superseded_at).
CREATE TABLE link_tokens (
    token_hash    BLOB PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose       TEXT NOT NULL,
    email         TEXT NOT NULL DEFAULT '', -- the address the link was sent to (verify, change: the new one)
    other_email   TEXT NOT NULL DEFAULT '', -- undo: the address to restore
    created_at    DATETIME NOT NULL,
    expires_at    DATETIME NOT NULL,
    used_at       DATETIME,
    superseded_at DATETIME
);
CREATE INDEX link_tokens_user_purpose ON link_tokens (user_id, purpose);

-- Devices an account has signed in on, so that a sign-in from a new one can be told to its owner.
CREATE TABLE known_devices (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    device_id  TEXT NOT NULL,
    first_seen DATETIME NOT NULL,
    PRIMARY KEY (user_id, device_id)
);
