-- Signing keys and the server secret, kept in the database so that instances on different machines
-- share them without a shared directory. Each is sealed (AES-256-GCM) under the operator's master
-- key (GATEHOUSE_MASTER_KEY), which the database never sees: a dump alone yields no usable key.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    created_at   TIMESTAMPTZ NOT NULL,
    activates_at TIMESTAMPTZ NOT NULL, -- published (verifies) at once, signs only from here on
    public_key   BYTEA NOT NULL,
    sealed       BYTEA NOT NULL
);

CREATE TABLE server_secret (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    sealed BYTEA NOT NULL
);

-- Every instance reloads its key ring when a key is added or retired.
CREATE FUNCTION gatehouse_notify_keys() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('gatehouse_keys', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER signing_keys_changed AFTER INSERT OR DELETE ON signing_keys
    FOR EACH STATEMENT EXECUTE FUNCTION gatehouse_notify_keys();
