-- Signing keys and the server secret in the database (used on PostgreSQL; the embedded SQLite
-- default keeps them in GATEHOUSE_KEY_DIR). The tables exist on both so the schemas stay alike.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    created_at   DATETIME NOT NULL,
    activates_at DATETIME NOT NULL,
    public_key   BLOB NOT NULL,
    sealed       BLOB NOT NULL
);

CREATE TABLE server_secret (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    sealed BLOB NOT NULL
);
