-- Registries Wharf talks to as a client (replication destinations), named the way ECR names
-- them: a registry id and a region. The password (or token) is never shown again. Twin of
-- migrations/sqlite.
CREATE TABLE remotes (
    registry_id TEXT COLLATE "C" NOT NULL,
    region      TEXT COLLATE "C" NOT NULL,
    url         TEXT NOT NULL,
    username    TEXT,
    password    TEXT,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (registry_id, region)
);
