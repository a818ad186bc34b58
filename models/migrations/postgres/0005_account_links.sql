-- Verified addresses, sign-in notices, and the single-use tokens that emailed links carry.
ALTER TABLE users ADD COLUMN email_verified_at TIMESTAMPTZ;
ALTER TABLE users ADD COLUMN notify_sign_ins BOOLEAN NOT NULL DEFAULT TRUE;

-- A link token (password reset, address verification, email change and its undo). Only its SHA-256
-- is kept. A newer token of one purpose supersedes the older ones of that user (superseded_at).
CREATE TABLE link_tokens (
    token_hash    BYTEA PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose       TEXT NOT NULL,
    email         TEXT NOT NULL DEFAULT '', -- the address the link was sent to (verify, change: the new one)
    other_email   TEXT NOT NULL DEFAULT '', -- undo: the address to restore
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    used_at       TIMESTAMPTZ,
    superseded_at TIMESTAMPTZ
);
CREATE INDEX link_tokens_user_purpose ON link_tokens (user_id, purpose);

-- Devices an account has signed in on, so that a sign-in from a new one can be told to its owner.
CREATE TABLE known_devices (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    device_id  TEXT NOT NULL,
    first_seen TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, device_id)
);

-- What /api/me answers from the revocation cache (the address and whether it is verified) now
-- changes too: caches on every instance hear of it.
DROP TRIGGER users_revocation ON users;
CREATE TRIGGER users_revocation AFTER UPDATE OF token_version, disabled_at, email, email_verified_at, display_name ON users
    FOR EACH ROW EXECUTE FUNCTION gatehouse_notify_revocation();
