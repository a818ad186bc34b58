-- SQLite: every rotation records the family's new live token in its history, in the statement
-- that rotates it. The refresh is then one UPDATE … RETURNING, atomic on its own, with no
-- BEGIN and COMMIT around it (models/rotate_sqlite.go). PostgreSQL records it in the same
-- statement too, as a data-modifying CTE (rotateStatement, models/session.go), and has no trigger.
CREATE TRIGGER device_sessions_record_token
AFTER UPDATE OF token_hash ON device_sessions
WHEN NEW.token_hash IS NOT OLD.token_hash
BEGIN
    INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at)
    VALUES (NEW.token_hash, NEW.id, NEW.rotated_at, NEW.token_expires_at);
END;
