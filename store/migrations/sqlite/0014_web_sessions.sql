-- Browser sessions of the provisioner's web console, shared by every provisioner host. A
-- session is known by the SHA-256 of its cookie value; the cookie itself is never stored. A
-- session lives until it is ended (sign-out, the person's sessions ended by the desk), sits
-- idle too long (last_seen_at, checked against the caller's idle limit) or reaches expires_at.
-- Ephemeral: `rampart store copy` leaves this table behind (people sign in again).
CREATE TABLE web_sessions (
    id_hash      BLOB   NOT NULL PRIMARY KEY,
    user_id      TEXT   NOT NULL REFERENCES users (id),
    username     TEXT   NOT NULL,
    roles        TEXT   NOT NULL,             -- comma-separated, e.g. 'employee,helpdesk'
    csrf_token   TEXT   NOT NULL,
    source       TEXT   NOT NULL,             -- the client address at sign-in
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    ended_at     BIGINT NULL
);
CREATE INDEX web_sessions_by_user ON web_sessions (user_id);
