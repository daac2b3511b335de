-- Registries Wharf talks to as a client (replication destinations), named the way ECR names
-- them: a registry id and a region. The password (or token) is never shown again. Twin of
-- migrations/postgres.
CREATE TABLE remotes (
    registry_id TEXT NOT NULL,
    region      TEXT NOT NULL,
    url         TEXT NOT NULL,
    username    TEXT,
    password    TEXT,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (registry_id, region)
) STRICT;
