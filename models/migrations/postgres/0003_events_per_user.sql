-- Prune keeps each user's newest events by id (models.EventsKeptPerUser).
CREATE INDEX security_events_user_id ON security_events (user_id, id);
