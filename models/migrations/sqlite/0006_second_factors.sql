-- How each session signed in: RFC 8176 "amr" values, space-separated ("pwd", "pwd otp", "hwk").
ALTER TABLE device_sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';

-- What a security event concerns beyond its kind: the name of a second factor, how a sign-in
-- signed in (its amr).
ALTER TABLE security_events ADD COLUMN detail TEXT NOT NULL DEFAULT '';

-- A second factor or passkey of a user. A TOTP factor counts once a code has confirmed it
-- (confirmed_at); its secret is sealed (AES-256-GCM under a key derived from the server secret),
-- and last_step is the newest time step accepted, so that no code is accepted twice. A passkey keeps
-- its WebAuthn credential (public key, flags, signature counter) as JSON.
CREATE TABLE factors (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    secret        BLOB,
    last_step     INTEGER NOT NULL DEFAULT 0,
    credential_id BLOB UNIQUE,
    credential    TEXT NOT NULL DEFAULT '',
    created_at    DATETIME NOT NULL,
    confirmed_at  DATETIME,
    last_used_at  DATETIME
);
CREATE INDEX factors_user ON factors (user_id);

-- Single-use recovery codes: only their SHA-256 is kept.
CREATE TABLE recovery_codes (
    code_hash  BLOB PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at DATETIME NOT NULL,
    used_at    DATETIME
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

-- A sign-in step in flight: the second step after a password ("second_factor"), or a WebAuthn
-- ceremony ("passkey_login", "passkey_register", "passkey_reauth"). Only the SHA-256 of its id is
-- kept; it is single-use (used_at), short-lived, and refuses after max attempts.
CREATE TABLE auth_challenges (
    id_hash       BLOB PRIMARY KEY,
    purpose       TEXT NOT NULL,
    user_id       TEXT REFERENCES users(id) ON DELETE CASCADE,
    session_id    TEXT NOT NULL DEFAULT '',
    token_version INTEGER NOT NULL DEFAULT 0,
    device_name   TEXT NOT NULL DEFAULT '',
    webauthn      TEXT NOT NULL DEFAULT '',
    attempts      INTEGER NOT NULL DEFAULT 0,
    created_at    DATETIME NOT NULL,
    expires_at    DATETIME NOT NULL,
    used_at       DATETIME
);
CREATE INDEX auth_challenges_expires ON auth_challenges (expires_at);
