-- The audit trail, twin of migrations/sqlite: one row per recorded action, in CloudTrail's
-- terms. Rows are written in batches by each node (see registry::audit) and deleted after the
-- retention period; nothing else changes them.
CREATE TABLE audit_events (
    event_id            TEXT COLLATE "C" PRIMARY KEY,
    event_time          BIGINT NOT NULL,
    event_name          TEXT NOT NULL,
    user_type           TEXT NOT NULL,
    user_name           TEXT,
    access_key_id       TEXT,
    source_ip           TEXT,
    user_agent          TEXT,
    request_id          TEXT,
    repository          TEXT,
    request_parameters  TEXT,
    response_elements   TEXT,
    error_code          TEXT,
    error_message       TEXT
);
CREATE INDEX audit_events_by_time ON audit_events (event_time, event_id);
CREATE INDEX audit_events_by_repository ON audit_events (repository, event_time);
CREATE INDEX audit_events_by_user ON audit_events (user_name, event_time);
