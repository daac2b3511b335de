-- Wharf's metadata: the source of truth for repositories, links, manifests and tags.
-- Times are milliseconds since the Unix epoch. Every table here has a twin in
-- migrations/postgres with the same name and columns.

-- Per-repository settings are columns from the start, so that tag immutability, scanning,
-- encryption, policies and lifecycle rules are queries rather than schema changes.
CREATE TABLE repositories (
    name                      TEXT PRIMARY KEY,
    created_at                INTEGER NOT NULL,
    public                    INTEGER NOT NULL DEFAULT 0,
    tag_mutability            TEXT NOT NULL DEFAULT 'MUTABLE',
    tag_mutability_exclusions TEXT NOT NULL DEFAULT '[]',
    scan_on_push              INTEGER NOT NULL DEFAULT 0,
    encryption                TEXT NOT NULL DEFAULT 'AES256',
    encryption_key            TEXT,
    policy                    TEXT,
    lifecycle_policy          TEXT
) STRICT;

-- Committed content, stored once whatever the number of repositories linking it.
CREATE TABLE blobs (
    digest     TEXT PRIMARY KEY,
    size       INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- A repository reaches a blob only through a link (pushed there or mounted).
CREATE TABLE repository_blobs (
    repository TEXT NOT NULL REFERENCES repositories (name) ON DELETE CASCADE,
    digest     TEXT NOT NULL REFERENCES blobs (digest),
    linked_at  INTEGER NOT NULL,
    PRIMARY KEY (repository, digest)
) STRICT;
CREATE INDEX repository_blobs_by_digest ON repository_blobs (digest);

CREATE TABLE manifests (
    repository     TEXT NOT NULL REFERENCES repositories (name) ON DELETE CASCADE,
    digest         TEXT NOT NULL,
    media_type     TEXT NOT NULL,
    artifact_type  TEXT,
    subject        TEXT,
    annotations    TEXT,
    content        BLOB NOT NULL,
    size           INTEGER NOT NULL,
    total_size     INTEGER NOT NULL,
    pushed_at      INTEGER NOT NULL,
    last_pulled_at INTEGER,
    PRIMARY KEY (repository, digest)
) STRICT;
CREATE INDEX manifests_by_subject ON manifests (repository, subject);

-- manifest -> blobs (config, layers) and index -> child manifests, for GC and sizes.
CREATE TABLE manifest_references (
    repository TEXT NOT NULL,
    manifest   TEXT NOT NULL,
    target     TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('blob', 'manifest')),
    PRIMARY KEY (repository, manifest, target),
    FOREIGN KEY (repository, manifest) REFERENCES manifests (repository, digest) ON DELETE CASCADE
) STRICT;
CREATE INDEX manifest_references_by_target ON manifest_references (target);

CREATE TABLE tags (
    repository TEXT NOT NULL,
    name       TEXT NOT NULL,
    manifest   TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (repository, name),
    FOREIGN KEY (repository, manifest) REFERENCES manifests (repository, digest) ON DELETE CASCADE
) STRICT;
CREATE INDEX tags_by_manifest ON tags (repository, manifest);

-- Uploads in progress: everything a node needs to continue one that another node started.
CREATE TABLE uploads (
    id         TEXT PRIMARY KEY,
    repository TEXT NOT NULL,
    size       INTEGER NOT NULL,
    hash_state BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX uploads_by_updated_at ON uploads (updated_at);

CREATE TABLE upload_parts (
    upload_id   TEXT NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    start       INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    storage_key TEXT NOT NULL,
    PRIMARY KEY (upload_id, storage_key)
) STRICT;

-- Append-only audit trail: PUSH, PULL, DELETE, DELETE_BLOB, TAG (a move), UNTAG.
CREATE TABLE events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at              INTEGER NOT NULL,
    action          TEXT NOT NULL,
    repository      TEXT NOT NULL,
    digest          TEXT,
    tag             TEXT,
    previous_digest TEXT,
    actor           TEXT
) STRICT;
CREATE INDEX events_by_repository ON events (repository, id);

-- Exactly one node runs each background job: whoever holds its unexpired lease.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
