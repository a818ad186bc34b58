-- SQLite has no LISTEN/NOTIFY: instances sharing the file notice another connection's commit
-- through PRAGMA data_version instead. This migration only keeps the versions of both dialects aligned.
SELECT 1;
