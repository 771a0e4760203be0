-- Who ended a session: `operator:NAME` (a kill, or a token change that ended it), `rule:NAME`
-- (idle, expired, session_limit, ticket_reused, account_disabled, …) or `person:NAME` (logout).
-- NULL for sessions ended before this column, and for live ones.
ALTER TABLE sessions ADD COLUMN ended_by TEXT NULL;
