-- The feed of session ends that gateways follow, ordered by when each end was committed.
--
-- Gateways used to poll by `ended_at`, the time the writer chose before it waited for the write
-- lock (up to the busy timeout) and read from its own host's clock, so an end that committed
-- later than the poll's overlap, or came from a host whose clock runs behind, was never seen.
-- Now every transaction that ends sessions first takes the next number from this one-row
-- counter and writes it to `end_seq` of each session it ends. Writers of the counter are
-- serialised by its row (PostgreSQL) or the database write lock (SQLite) until they commit, so
-- numbers become visible in order: a reader that sees number n sees every number below it. A
-- rolled-back transaction leaves a gap, which is harmless. A database sequence would not do:
-- its numbers are handed out outside the transaction, so n+1 could commit before n.

CREATE TABLE session_end_feed (
    id       BIGINT NOT NULL PRIMARY KEY CHECK (id = 1),
    last_seq BIGINT NOT NULL CHECK (last_seq >= 0)
);
INSERT INTO session_end_feed (id, last_seq) VALUES (1, 0);

-- Position of the session's end in the feed; NULL while live, and for sessions that ended
-- before this migration (gateways start following the feed at its current position).
ALTER TABLE sessions ADD COLUMN end_seq BIGINT NULL;
CREATE INDEX sessions_by_end_seq ON sessions (end_seq);
