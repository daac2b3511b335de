-- Pull-through caches (ECR's CreatePullThroughCacheRule), twin of migrations/sqlite: a
-- repository named `<prefix>/<path>` that does not hold what is pulled fetches it from
-- `<upstream_url>/v2/<path>`, logging in with the credential the rule names.
CREATE TABLE pull_through_rules (
    prefix         TEXT PRIMARY KEY,
    upstream_url   TEXT NOT NULL,
    credential_arn TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

-- Upstream logins, named by an ARN shaped as ECR's `credentialArn` (a Secrets Manager secret
-- named `ecr-pullthroughcache/…`). Kept while a rule names them; never shown again.
CREATE TABLE upstream_credentials (
    arn        TEXT PRIMARY KEY,
    username   TEXT NOT NULL,
    password   TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- When a tag cached from an upstream was last compared with it; NULL for a pushed tag.
ALTER TABLE tags ADD COLUMN upstream_checked_at BIGINT;
