-- Parts may share a storage key. Twin of migrations/sqlite.
--
-- The filesystem store appends each chunk to the staging file of the part before it, so the
-- parts of an upload name one file. A part is now identified by where it starts, its size and
-- its key; a repeated empty part at one offset is the same row.

ALTER TABLE upload_parts
    DROP CONSTRAINT upload_parts_pkey,
    ADD PRIMARY KEY (upload_id, start, size, storage_key);
