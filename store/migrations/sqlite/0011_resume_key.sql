-- Resume tickets bound to a key the client holds, and replaced at every resume.

-- The Ed25519 public key (32 bytes) named at login; every resume must be signed by it. NULL: the
-- session cannot be resumed.
ALTER TABLE sessions ADD COLUMN client_key BLOB NULL;

-- Every ticket a resume replaced: presenting one again means a copy of the session is in use
-- elsewhere, and the session is ended.
CREATE TABLE replaced_tickets (
    hash        BLOB   NOT NULL PRIMARY KEY,  -- SHA-256 of the replaced ticket
    session_id  TEXT   NOT NULL,
    replaced_at BIGINT NOT NULL
);
