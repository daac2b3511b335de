-- Login attempts counted per key ('user:<name>@<address>', 'address:<address>') in fixed
-- windows, so that every node sees one budget. Twin of migrations/postgres.
CREATE TABLE login_attempts (
    key               TEXT PRIMARY KEY,
    attempts          INTEGER NOT NULL,
    window_started_at INTEGER NOT NULL
) STRICT;
CREATE INDEX login_attempts_by_window ON login_attempts (window_started_at);
