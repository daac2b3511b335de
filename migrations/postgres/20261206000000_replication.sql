-- Replication (ECR's PutReplicationConfiguration), twin of migrations/sqlite: the registry's
-- configuration in ECR's JSON, and one row per image, destination and tag to copy there. A row
-- is IN_PROGRESS until copied (COMPLETE) or given up on (FAILED), and due again at
-- next_attempt while it is retried; the tag is '' for an image pushed by digest alone.
ALTER TABLE registry ADD COLUMN replication TEXT;

CREATE TABLE replications (
    repository   TEXT COLLATE "C" NOT NULL,
    digest       TEXT NOT NULL,
    registry_id  TEXT NOT NULL,
    region       TEXT NOT NULL,
    tag          TEXT NOT NULL,
    status       TEXT NOT NULL,
    attempts     BIGINT NOT NULL,
    next_attempt BIGINT NOT NULL,
    failure      TEXT,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (repository, digest, registry_id, region, tag)
);
CREATE INDEX replications_due ON replications (status, next_attempt);
