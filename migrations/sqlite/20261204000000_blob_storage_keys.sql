-- A blob kept in the object its upload staged it in (S3), instead of under its digest, so that
-- finishing the upload copied nothing. NULL: stored under its digest.
ALTER TABLE blobs ADD COLUMN storage_key TEXT;
CREATE UNIQUE INDEX blobs_by_storage_key ON blobs (storage_key);
