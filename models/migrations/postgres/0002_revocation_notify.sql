-- Every change that can revoke an access token (token_version, disabled_at, a session's
-- revoked_at or authenticated_at) notifies channel gatehouse_revocation when its transaction
-- commits, whichever process made it (a server, the CLI, an operator's psql). Caches of the
-- revocation state on every instance listen. Refreshes touch none of these columns: no cost there.
CREATE FUNCTION gatehouse_notify_revocation() RETURNS trigger AS $$
BEGIN
    IF TG_TABLE_NAME = 'users' THEN
        PERFORM pg_notify('gatehouse_revocation', 'u:' || NEW.id);
    ELSE
        PERFORM pg_notify('gatehouse_revocation', 's:' || NEW.id);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER users_revocation AFTER UPDATE OF token_version, disabled_at ON users
    FOR EACH ROW EXECUTE FUNCTION gatehouse_notify_revocation();
CREATE TRIGGER device_sessions_revocation AFTER UPDATE OF revoked_at, authenticated_at ON device_sessions
    FOR EACH ROW EXECUTE FUNCTION gatehouse_notify_revocation();
