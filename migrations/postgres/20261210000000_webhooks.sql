-- Event notifications, twin of migrations/sqlite: the webhooks, and one delivery per event
-- and webhook it matched. A delivery is queued in the transaction that made its event (a push,
-- a delete, a lifecycle expiry, a finished scan or replication), PENDING until the receiver
-- accepts it (DELIVERED) or it is given up on (FAILED); due again at next_attempt. The body is
-- made at delivery from the event's facts kept here; detail holds the kind's own (JSON).
CREATE TABLE webhooks (
    id                TEXT PRIMARY KEY,
    url               TEXT NOT NULL,
    events            TEXT NOT NULL,
    repository_prefix TEXT NOT NULL,
    secret            TEXT NOT NULL,
    created_at        BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id           TEXT PRIMARY KEY,
    webhook_id   TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    repository   TEXT NOT NULL,
    digest       TEXT,
    tag          TEXT,
    detail       TEXT,
    event_time   BIGINT NOT NULL,
    status       TEXT NOT NULL,
    attempts     BIGINT NOT NULL,
    next_attempt BIGINT NOT NULL,
    last_error   TEXT,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, updated_at);
