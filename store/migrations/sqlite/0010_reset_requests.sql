-- Token resets under dual control: a temporary code, a replacement token or an unlock that one
-- operator asked for and a second operator must approve before it expires. Nothing secret is
-- kept here: a temporary code or a replacement is made when the requester collects the
-- approved request, and shown only in that answer.
CREATE TABLE reset_requests (
    id              TEXT   NOT NULL PRIMARY KEY,
    user_id         TEXT   NOT NULL REFERENCES users (id),
    action          TEXT   NOT NULL
        CHECK (action IN ('temporary_code', 'replacement', 'temporary_code+replacement', 'unlock')),
    token_id        TEXT   NULL,                  -- the token an unlock is for
    reason          TEXT   NOT NULL,
    requested_by    TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    -- Pending: approve before this; approved: collect before this.
    expires_at      BIGINT NOT NULL,
    status          TEXT   NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'done')),
    decided_by      TEXT   NULL,
    decided_at      BIGINT NULL,
    decision_reason TEXT   NOT NULL DEFAULT '',
    completed_at    BIGINT NULL,
    -- No one approves their own request, whatever the code above the database does.
    CHECK (status NOT IN ('approved', 'done') OR (decided_by IS NOT NULL AND decided_by <> requested_by))
);
CREATE INDEX reset_requests_by_status ON reset_requests (status, expires_at);
