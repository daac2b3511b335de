-- Principals for access control: users (argon2 password hashes), their access keys, and the
-- registry's token signing key, shared by every node. Twin of migrations/postgres.

CREATE TABLE users (
    name          TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    -- IAM-style identity policy (JSON); NULL allows nothing.
    policy        TEXT,
    created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE access_keys (
    id          TEXT PRIMARY KEY,
    user_name   TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX access_keys_by_user ON access_keys (user_name);

-- One row: the first node to start stores its key, the others read it.
CREATE TABLE signing_keys (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    pkcs8      BLOB NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
