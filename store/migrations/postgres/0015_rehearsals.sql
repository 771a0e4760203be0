-- Rehearsals: `rampart-connect doctor --rehearse` opens each of the person's resources through
-- their gateway session and reports the outcome here. A passed rehearsal (at least one
-- resource, every one opened) is a step of the readiness funnel; later logins after it are
-- the person's first real connections. Kept by `rampart store copy`.
CREATE TABLE rehearsals (
    id         TEXT    NOT NULL PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id),
    session_id TEXT    NULL,                  -- the gateway session the rehearsal ran in
    at         BIGINT  NOT NULL,
    passed     BOOLEAN NOT NULL,
    resources  BIGINT  NOT NULL,              -- how many resources were tried
    failed     BIGINT  NOT NULL,              -- how many of them did not open
    detail     TEXT    NOT NULL,              -- JSON list of {resource, ok, reason}
    source     TEXT    NOT NULL,              -- where the report came from
    seq        BIGINT  NOT NULL               -- reports in the order they were stored (several may share a second)
);
CREATE INDEX rehearsals_by_user ON rehearsals (user_id);
