-- Self-service enrolment. A registration code is what a letter, a phone call or an e-mail
-- carries instead of a seed: with the directory password it lets the person enrol their own
-- authenticator. Only a hash of the code is kept, bound to the person's id.
CREATE TABLE registration_codes (
    id           TEXT   NOT NULL PRIMARY KEY,
    user_id      TEXT   NOT NULL REFERENCES users (id),
    code_hash    BLOB   NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    created_by   TEXT   NOT NULL,
    delivery     TEXT   NOT NULL CHECK (delivery IN ('letter', 'phone', 'email')),
    failures     BIGINT NOT NULL DEFAULT 0,
    used_at      BIGINT NULL,                 -- the enrolment it opened was confirmed
    withdrawn_at BIGINT NULL                  -- replaced by a newer code, or spent by wrong tries
);
CREATE INDEX registration_codes_by_user ON registration_codes (user_id);

-- An enrolment started with a registration code and not yet confirmed with a first code from
-- the new authenticator. It is not a token: no gateway accepts it. Confirming moves it into
-- tokens in one transaction; one that expires is never confirmed. One per person at a time.
CREATE TABLE enrolments (
    id                TEXT    NOT NULL PRIMARY KEY,
    user_id           TEXT    NOT NULL UNIQUE REFERENCES users (id),
    registration_code TEXT    NOT NULL REFERENCES registration_codes (id),
    token_id          TEXT    NOT NULL,       -- the id the seed is sealed for
    algorithm         TEXT    NOT NULL,
    digits            BIGINT  NOT NULL,
    period            BIGINT  NOT NULL,
    time_window       BIGINT  NOT NULL,
    key_id            BIGINT  NOT NULL,
    sealed_seed       BLOB    NOT NULL,
    created_at        BIGINT  NOT NULL,
    expires_at        BIGINT  NOT NULL,
    failures          BIGINT  NOT NULL DEFAULT 0
);
