-- What lifecycle policies and garbage collection add. Twin of migrations/postgres.
--
-- repository_blobs.linked_at now means "linked, or last relied on": pushing or mounting a blob
-- that is already linked, a HEAD that lets a client skip its upload, and deleting a manifest
-- that referenced it all move it forward, so that the collection's grace period counts from
-- there.

-- Why a registry action happened, e.g. the lifecycle rule that expired an image.
ALTER TABLE events ADD COLUMN detail TEXT;

-- The last lifecycle policy preview of each repository: the policy it evaluated and what it
-- would expire (a JSON array), kept for GetLifecyclePolicyPreview on any node.
CREATE TABLE lifecycle_previews (
    repository TEXT PRIMARY KEY REFERENCES repositories (name) ON DELETE CASCADE,
    policy     TEXT NOT NULL,
    results    TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
