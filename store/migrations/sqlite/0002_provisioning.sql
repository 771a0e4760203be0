-- Provisioning: operators with hashed API keys, token history, delivery of bulk-issued seeds,
-- temporary one-time codes.

-- When the seed of a token reached its owner (or the enrolment output). NULL while a bulk run
-- has issued the token but not yet written the person's QR code: a rerun replaces it.
ALTER TABLE tokens ADD COLUMN delivered_at BIGINT NULL;
ALTER TABLE tokens ADD COLUMN issued_by TEXT NOT NULL DEFAULT '';
-- How many time steps the owner's device runs ahead (negative: behind), learnt by a resync;
-- codes are checked at now + drift_steps * period.
ALTER TABLE tokens ADD COLUMN drift_steps BIGINT NOT NULL DEFAULT 0;
-- Tokens issued before provisioning existed were handed over at issue.
UPDATE tokens SET delivered_at = created_at;

-- Members of a group (users_in_group, list_tokens filtered by group); the primary key of
-- user_groups leads with user_id and cannot serve a lookup by group.
CREATE INDEX user_groups_by_group ON user_groups (group_name);

CREATE TABLE operators (
    id         TEXT   NOT NULL PRIMARY KEY,
    name       TEXT   NOT NULL UNIQUE,
    role       TEXT   NOT NULL CHECK (role IN ('admin', 'helpdesk', 'auditor')),
    key_hash   BLOB   NOT NULL UNIQUE,            -- SHA-256 of the API key
    created_at BIGINT NOT NULL,
    created_by TEXT   NOT NULL,
    revoked_at BIGINT NULL
);

-- Every change to a token: who did what, when. Append-only.
CREATE TABLE token_events (
    seq      INTEGER NOT NULL PRIMARY KEY,        -- BIGSERIAL in PostgreSQL
    at       BIGINT  NOT NULL,
    actor    TEXT    NOT NULL,
    action   TEXT    NOT NULL,
    user_id  TEXT    NOT NULL,
    token_id TEXT    NULL,
    detail   TEXT    NOT NULL
);
CREATE INDEX token_events_by_user ON token_events (user_id, seq);

CREATE TABLE temp_codes (
    id         TEXT   NOT NULL PRIMARY KEY,
    user_id    TEXT   NOT NULL REFERENCES users (id),
    code_hash  BLOB   NOT NULL,                   -- SHA-256 over the user id and the code
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT NULL,
    created_by TEXT   NOT NULL
);
CREATE INDEX temp_codes_by_user ON temp_codes (user_id);
