-- Wharf's metadata: the source of truth for repositories, links, manifests and tags.
-- Times are milliseconds since the Unix epoch. Every table here has a twin in
-- migrations/sqlite with the same name and columns.

-- Per-repository settings are columns from the start, so that tag immutability, scanning,
-- encryption, policies and lifecycle rules are queries rather than schema changes.
CREATE TABLE repositories (
    name                      TEXT COLLATE "C" PRIMARY KEY,
    created_at                BIGINT NOT NULL,
    public                    BOOLEAN NOT NULL DEFAULT FALSE,
    tag_mutability            TEXT NOT NULL DEFAULT 'MUTABLE',
    tag_mutability_exclusions TEXT NOT NULL DEFAULT '[]',
    scan_on_push              BOOLEAN NOT NULL DEFAULT FALSE,
    encryption                TEXT NOT NULL DEFAULT 'AES256',
    encryption_key            TEXT,
    policy                    TEXT,
    lifecycle_policy          TEXT
);

-- Committed content, stored once whatever the number of repositories linking it.
CREATE TABLE blobs (
    digest     TEXT COLLATE "C" PRIMARY KEY,
    size       BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- A repository reaches a blob only through a link (pushed there or mounted).
CREATE TABLE repository_blobs (
    repository TEXT NOT NULL REFERENCES repositories (name) ON DELETE CASCADE,
    digest     TEXT NOT NULL REFERENCES blobs (digest),
    linked_at  BIGINT NOT NULL,
    PRIMARY KEY (repository, digest)
);
CREATE INDEX repository_blobs_by_digest ON repository_blobs (digest);

CREATE TABLE manifests (
    repository     TEXT NOT NULL REFERENCES repositories (name) ON DELETE CASCADE,
    digest         TEXT NOT NULL,
    media_type     TEXT NOT NULL,
    artifact_type  TEXT,
    subject        TEXT,
    annotations    TEXT,
    content        BYTEA NOT NULL,
    size           BIGINT NOT NULL,
    total_size     BIGINT NOT NULL,
    pushed_at      BIGINT NOT NULL,
    last_pulled_at BIGINT,
    PRIMARY KEY (repository, digest)
);
CREATE INDEX manifests_by_subject ON manifests (repository, subject);

-- manifest -> blobs (config, layers) and index -> child manifests, for GC and sizes.
CREATE TABLE manifest_references (
    repository TEXT NOT NULL,
    manifest   TEXT NOT NULL,
    target     TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('blob', 'manifest')),
    PRIMARY KEY (repository, manifest, target),
    FOREIGN KEY (repository, manifest) REFERENCES manifests (repository, digest) ON DELETE CASCADE
);
CREATE INDEX manifest_references_by_target ON manifest_references (target);

CREATE TABLE tags (
    repository TEXT NOT NULL,
    name       TEXT COLLATE "C" NOT NULL,
    manifest   TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (repository, name),
    FOREIGN KEY (repository, manifest) REFERENCES manifests (repository, digest) ON DELETE CASCADE
);
CREATE INDEX tags_by_manifest ON tags (repository, manifest);

-- Uploads in progress: everything a node needs to continue one that another node started.
CREATE TABLE uploads (
    id         TEXT COLLATE "C" PRIMARY KEY,
    repository TEXT NOT NULL,
    size       BIGINT NOT NULL,
    hash_state BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX uploads_by_updated_at ON uploads (updated_at);

CREATE TABLE upload_parts (
    upload_id   TEXT NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    start       BIGINT NOT NULL,
    size        BIGINT NOT NULL,
    storage_key TEXT NOT NULL,
    PRIMARY KEY (upload_id, storage_key)
);

-- Append-only audit trail: PUSH, PULL, DELETE, DELETE_BLOB, TAG (a move), UNTAG.
CREATE TABLE events (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at              BIGINT NOT NULL,
    action          TEXT NOT NULL,
    repository      TEXT NOT NULL,
    digest          TEXT,
    tag             TEXT,
    previous_digest TEXT,
    actor           TEXT
);
CREATE INDEX events_by_repository ON events (repository, id);

-- Exactly one node runs each background job: whoever holds its unexpired lease.
CREATE TABLE leases (
    name       TEXT COLLATE "C" PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
