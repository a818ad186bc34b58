-- Nothing on PostgreSQL: its rotation records the new token in the same statement, as a
-- data-modifying CTE (rotateStatement, models/session.go). SQLite's 0008 adds a trigger for it;
-- the versions stay alike on both databases.
SELECT 1;
