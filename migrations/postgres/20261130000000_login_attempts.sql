-- Login attempts counted per key ('user:<name>@<address>', 'address:<address>') in fixed
-- windows, so that every node sees one budget. Twin of migrations/sqlite.
CREATE TABLE login_attempts (
    key               TEXT COLLATE "C" PRIMARY KEY,
    attempts          BIGINT NOT NULL,
    window_started_at BIGINT NOT NULL
);
CREATE INDEX login_attempts_by_window ON login_attempts (window_started_at);
