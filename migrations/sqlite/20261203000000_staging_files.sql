-- Parts may share a storage key. Twin of migrations/postgres.
--
-- The filesystem store appends each chunk to the staging file of the part before it, so the
-- parts of an upload name one file. A part is now identified by where it starts, its size and
-- its key; a repeated empty part at one offset is the same row.

CREATE TABLE upload_parts_by_offset (
    upload_id   TEXT NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    start       INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    storage_key TEXT NOT NULL,
    PRIMARY KEY (upload_id, start, size, storage_key)
) STRICT;

INSERT INTO upload_parts_by_offset (upload_id, start, size, storage_key)
    SELECT upload_id, start, size, storage_key FROM upload_parts;
DROP TABLE upload_parts;
ALTER TABLE upload_parts_by_offset RENAME TO upload_parts;
