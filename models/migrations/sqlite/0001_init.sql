-- Users, device sessions (one refresh-token family each), the history of issued refresh tokens, and
-- security events. Times are UTC; token hashes are SHA-256 digests, never the tokens.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    token_version INTEGER NOT NULL DEFAULT 1,
    disabled_at   DATETIME,
    created_at    DATETIME NOT NULL,
    updated_at    DATETIME NOT NULL
);

-- A device session is a refresh-token family. token_hash is its one live token (so a family cannot
-- fork: there is one column to hold it); prev_token_hash is the token it replaced, kept for the
-- idempotent-retry grace window.
CREATE TABLE device_sessions (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    device_id        TEXT NOT NULL,
    device_name      TEXT NOT NULL,
    user_agent       TEXT NOT NULL DEFAULT '',
    created_ip       TEXT NOT NULL DEFAULT '',
    last_ip          TEXT NOT NULL DEFAULT '',
    created_at       DATETIME NOT NULL,
    last_used_at     DATETIME NOT NULL,
    expires_at       DATETIME NOT NULL,
    authenticated_at DATETIME NOT NULL,
    token_hash       BLOB NOT NULL,
    token_expires_at DATETIME NOT NULL,
    prev_token_hash  BLOB,
    rotated_at       DATETIME,
    revoked_at       DATETIME,
    revoked_reason   TEXT NOT NULL DEFAULT '',
    user_named       BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX device_sessions_token_hash ON device_sessions (token_hash);
CREATE INDEX device_sessions_prev_token_hash ON device_sessions (prev_token_hash);
CREATE UNIQUE INDEX device_sessions_live_device ON device_sessions (user_id, device_id) WHERE revoked_at IS NULL;
CREATE INDEX device_sessions_expires_at ON device_sessions (expires_at);

-- Every refresh token ever issued, by hash, so that a replayed old token finds its family.
CREATE TABLE refresh_tokens (
    token_hash BLOB PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES device_sessions(id) ON DELETE CASCADE,
    issued_at  DATETIME NOT NULL,
    expires_at DATETIME NOT NULL
);
CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE security_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    session_id  TEXT NOT NULL DEFAULT '',
    device_name TEXT NOT NULL DEFAULT '',
    kind        TEXT NOT NULL,
    ip          TEXT NOT NULL DEFAULT '',
    created_at  DATETIME NOT NULL
);
CREATE INDEX security_events_user_created ON security_events (user_id, created_at);
