-- Principals for access control: users (argon2 password hashes), their access keys, and the
-- registry's token signing key, shared by every node. Twin of migrations/sqlite.

CREATE TABLE users (
    name          TEXT COLLATE "C" PRIMARY KEY,
    password_hash TEXT NOT NULL,
    -- IAM-style identity policy (JSON); NULL allows nothing.
    policy        TEXT,
    created_at    BIGINT NOT NULL
);

CREATE TABLE access_keys (
    id          TEXT COLLATE "C" PRIMARY KEY,
    user_name   TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX access_keys_by_user ON access_keys (user_name);

-- One row: the first node to start stores its key, the others read it.
CREATE TABLE signing_keys (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    pkcs8      BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
