-- Rampart store schema, version 1 (PostgreSQL). The same tables as the SQLite migration of the
-- same number; the differences are BYTEA for BLOB, identity columns for SQLite's INTEGER
-- PRIMARY KEY, and `sessions.rowid` spelt out (SQLite has it implicitly; statements break ties
-- by it). Times are unix seconds.

CREATE TABLE users (
    id            TEXT    NOT NULL PRIMARY KEY,   -- directory's stable id
    username      TEXT    NOT NULL UNIQUE,        -- normalised (trimmed, lowercase)
    display_name  TEXT    NOT NULL,
    password_hash TEXT    NULL,
    enabled       BOOLEAN NOT NULL,
    created_at    BIGINT  NOT NULL
);

CREATE TABLE user_groups (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_name TEXT NOT NULL,
    PRIMARY KEY (user_id, group_name)
);

CREATE TABLE tokens (
    id             TEXT   NOT NULL PRIMARY KEY,
    user_id        TEXT   NOT NULL REFERENCES users (id),
    state          TEXT   NOT NULL
                   CHECK (state IN ('pending', 'active', 'revoked', 'lost', 'expired')),
    algorithm      TEXT   NOT NULL CHECK (algorithm IN ('SHA1', 'SHA256', 'SHA512')),
    digits         BIGINT NOT NULL,
    period         BIGINT NOT NULL,
    time_window    BIGINT NOT NULL,
    key_id         BIGINT NOT NULL,
    sealed_seed    BYTEA   NOT NULL,               -- nonce || AES-256-GCM ciphertext || tag
    last_step      BIGINT NULL,                   -- highest accepted time step (replay guard)
    activated_step BIGINT NULL,                   -- step whose acceptance activated the token
    failures       BIGINT NOT NULL DEFAULT 0 CHECK (failures >= 0),
    created_at     BIGINT NOT NULL,
    activated_at   BIGINT NULL,
    last_used_at   BIGINT NULL,
    updated_at     BIGINT NOT NULL
);

-- At most one live (pending or active) token per user.
CREATE UNIQUE INDEX tokens_one_live_per_user ON tokens (user_id)
    WHERE state IN ('pending', 'active');
CREATE INDEX tokens_by_user ON tokens (user_id);

CREATE TABLE sessions (
    rowid       BIGINT GENERATED ALWAYS AS IDENTITY,  -- insertion order, as SQLite's rowid
    id          TEXT   NOT NULL PRIMARY KEY,
    ticket_hash BYTEA   NOT NULL UNIQUE,           -- SHA-256 of the resume ticket
    user_id     TEXT   NOT NULL,
    username    TEXT   NOT NULL,
    group_names TEXT   NOT NULL,                  -- JSON array of strings
    source      TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    ended_at    BIGINT NULL,
    end_reason  TEXT   NULL
);

CREATE INDEX sessions_by_user ON sessions (user_id);
