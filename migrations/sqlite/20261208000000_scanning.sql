-- Image scanning, twin of migrations/postgres: the registry's scanning configuration in ECR's
-- JSON, the vulnerability database, and one scan per image.
--
-- The vulnerability database holds OSV advisories by source (the distribution an advisory's
-- ecosystem names: Debian, Ubuntu, Alpine, …). An import writes its rows under a new
-- generation, then makes that generation each of its sources' current one in one transaction,
-- so that a scan never sees half an import; rows of other generations are deleted then.
ALTER TABLE registry ADD COLUMN scanning TEXT;

CREATE TABLE advisory_sources (
    source      TEXT PRIMARY KEY,
    generation  INTEGER NOT NULL,
    imported_at INTEGER NOT NULL,
    advisories  INTEGER NOT NULL
) STRICT;

CREATE TABLE advisories (
    source     TEXT NOT NULL,
    generation INTEGER NOT NULL,
    id         TEXT NOT NULL,
    record     TEXT NOT NULL,
    PRIMARY KEY (source, generation, id)
) STRICT;

-- The packages an advisory names, to find the advisories of an image's packages.
CREATE TABLE advisory_packages (
    source     TEXT NOT NULL,
    generation INTEGER NOT NULL,
    package    TEXT NOT NULL,
    id         TEXT NOT NULL,
    PRIMARY KEY (source, generation, package, id)
) STRICT;

-- A scan is IN_PROGRESS from its request until a node finishes it (COMPLETE, FAILED or
-- UNSUPPORTED_IMAGE); a node works on it while claimed_until is ahead. findings is the JSON
-- array of findings, severity_counts the JSON object of counts by severity, distribution the
-- source of the advisories they were found with and source_updated_at its import time.
CREATE TABLE image_scans (
    repository        TEXT NOT NULL,
    digest            TEXT NOT NULL,
    status            TEXT NOT NULL,
    description       TEXT,
    requested_at      INTEGER NOT NULL,
    claimed_until     INTEGER NOT NULL,
    attempts          INTEGER NOT NULL,
    completed_at      INTEGER,
    distribution      TEXT,
    source_updated_at INTEGER,
    findings          TEXT,
    severity_counts   TEXT,
    PRIMARY KEY (repository, digest),
    FOREIGN KEY (repository, digest) REFERENCES manifests (repository, digest) ON DELETE CASCADE
) STRICT;
CREATE INDEX image_scans_due ON image_scans (status, requested_at);
