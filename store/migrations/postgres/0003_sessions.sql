-- Sessions that end when their token does, idle tracking across reconnects, and the feed
-- gateways poll to close sessions ended elsewhere (kill, revocation, another gateway).

-- The token whose code opened the session; NULL for a temporary one-time code.
ALTER TABLE sessions ADD COLUMN token_id TEXT NULL;
-- When a gateway last saw the session in use (written when its last connection leaves).
ALTER TABLE sessions ADD COLUMN last_seen_at BIGINT NULL;

CREATE INDEX sessions_by_end ON sessions (ended_at);
CREATE INDEX sessions_by_token ON sessions (token_id);
