-- Image scanning, twin of migrations/sqlite: the registry's scanning configuration in ECR's
-- JSON, the vulnerability database, and one scan per image.
--
-- The vulnerability database holds OSV advisories by source (the distribution an advisory's
-- ecosystem names: Debian, Ubuntu, Alpine, …). An import writes its rows under a new
-- generation, then makes that generation each of its sources' current one in one transaction,
-- so that a scan never sees half an import; rows of other generations are deleted then.
ALTER TABLE registry ADD COLUMN scanning TEXT;

CREATE TABLE advisory_sources (
    source      TEXT PRIMARY KEY,
    generation  BIGINT NOT NULL,
    imported_at BIGINT NOT NULL,
    advisories  BIGINT NOT NULL
);

CREATE TABLE advisories (
    source     TEXT NOT NULL,
    generation BIGINT NOT NULL,
    id         TEXT NOT NULL,
    record     TEXT NOT NULL,
    PRIMARY KEY (source, generation, id)
);

-- The packages an advisory names, to find the advisories of an image's packages.
CREATE TABLE advisory_packages (
    source     TEXT NOT NULL,
    generation BIGINT NOT NULL,
    package    TEXT NOT NULL,
    id         TEXT NOT NULL,
    PRIMARY KEY (source, generation, package, id)
);

-- A scan is IN_PROGRESS from its request until a node finishes it (COMPLETE, FAILED or
-- UNSUPPORTED_IMAGE); a node works on it while claimed_until is ahead. findings is the JSON
-- array of findings, severity_counts the JSON object of counts by severity, distribution the
-- source of the advisories they were found with and source_updated_at its import time.
CREATE TABLE image_scans (
    repository        TEXT NOT NULL,
    digest            TEXT NOT NULL,
    status            TEXT NOT NULL,
    description       TEXT,
    requested_at      BIGINT NOT NULL,
    claimed_until     BIGINT NOT NULL,
    attempts          BIGINT NOT NULL,
    completed_at      BIGINT,
    distribution      TEXT,
    source_updated_at BIGINT,
    findings          TEXT,
    severity_counts   TEXT,
    PRIMARY KEY (repository, digest),
    FOREIGN KEY (repository, digest) REFERENCES manifests (repository, digest) ON DELETE CASCADE
);
CREATE INDEX image_scans_due ON image_scans (status, requested_at);
