-- What ECR's management API adds: the registry's own identity and registry policy (one row,
-- the first node's candidate id wins), resource tags of repositories, and access-key secrets,
-- which SigV4 needs in the clear to recompute signatures (keys made before keep only their
-- hash and work for Basic logins alone). Twin of migrations/sqlite.
CREATE TABLE registry (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    registry_id TEXT NOT NULL,
    policy      TEXT,
    created_at  BIGINT NOT NULL
);

CREATE TABLE repository_tags (
    repository TEXT NOT NULL REFERENCES repositories (name) ON DELETE CASCADE,
    key        TEXT COLLATE "C" NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (repository, key)
);

ALTER TABLE access_keys ADD COLUMN secret TEXT;
