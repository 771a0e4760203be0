//! The store's SQL statements, written once in the dialect SQLite and PostgreSQL share
//! (numbered `$n` parameters, `ON CONFLICT … DO UPDATE`, `RETURNING`), so every backend runs the
//! same text. Replay and lockout rules live in single conditional statements here.

/// Insert a user or update every field but `created_at`. `$1` id, `$2` username,
/// `$3` display name, `$4` password hash, `$5` enabled, `$6` created at.
pub(crate) const UPSERT_USER: &str = "\
INSERT INTO users (id, username, display_name, password_hash, enabled, created_at) \
VALUES ($1, $2, $3, $4, $5, $6) \
ON CONFLICT (id) DO UPDATE SET username = excluded.username, \
display_name = excluded.display_name, password_hash = excluded.password_hash, \
enabled = excluded.enabled";

/// `$1` user id.
pub(crate) const DELETE_USER_GROUPS: &str = "DELETE FROM user_groups WHERE user_id = $1";

/// `$1` user id, `$2` group name. Duplicates in the input are ignored.
pub(crate) const INSERT_USER_GROUP: &str = "\
INSERT INTO user_groups (user_id, group_name) VALUES ($1, $2) \
ON CONFLICT (user_id, group_name) DO NOTHING";

/// A user joined with its groups, one row per group (one row with a NULL group if none).
macro_rules! select_user {
    () => {
        "SELECT u.id, u.username, u.display_name, u.password_hash, u.enabled, u.created_at, \
         g.group_name FROM users u LEFT JOIN user_groups g ON g.user_id = u.id"
    };
}

/// `$1` normalised username (exact match).
pub(crate) const USER_BY_USERNAME: &str = concat!(select_user!(), " WHERE u.username = $1");

/// `$1` user id.
pub(crate) const USER_BY_ID: &str = concat!(select_user!(), " WHERE u.id = $1");

/// `$1` id, `$2` user id, `$3` state, `$4` algorithm, `$5` digits, `$6` period, `$7` window,
/// `$8` key id, `$9` sealed seed, `$10` last step, `$11` failures, `$12` created at,
/// `$13` activated at, `$14` last used at. `updated_at` starts as `created_at`. A token stored
/// this way is handed over directly, so `delivered_at` is `created_at` too (as for the tokens
/// that existed before migration 2); [`ISSUE_TOKEN`] is the provisioner's variant.
pub(crate) const INSERT_TOKEN: &str = "\
INSERT INTO tokens (id, user_id, state, algorithm, digits, period, time_window, key_id, \
sealed_seed, last_step, failures, created_at, activated_at, last_used_at, drift_steps, updated_at, \
delivered_at) \
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $12, $12)";

macro_rules! select_token {
    () => {
        "SELECT id, user_id, state, algorithm, digits, period, time_window, key_id, sealed_seed, \
         last_step, failures, created_at, activated_at, last_used_at, drift_steps FROM tokens"
    };
}

/// `$1` user id.
pub(crate) const LIVE_TOKEN_FOR_USER: &str = concat!(
    select_token!(),
    " WHERE user_id = $1 AND state IN ('pending', 'active')"
);

/// Changes a token's state if the life-cycle allows it: a terminal target (`$4` true) from
/// any state; `active` from pending or active; `pending` only from pending. Terminal tokens
/// never come back to life. `$1` id, `$2` new state, `$3` now, `$4` target is terminal.
pub(crate) const SET_TOKEN_STATE: &str = "\
UPDATE tokens SET state = $2, \
activated_at = CASE WHEN $2 = 'active' THEN COALESCE(activated_at, $3) ELSE activated_at END, \
updated_at = $3 \
WHERE id = $1 AND ($4 OR state = $2 OR (state = 'pending' AND $2 = 'active'))";

/// The replay and lockout gate: records step `$2` only if the token is live, `$2` is newer
/// than the last accepted step and failures are below `$3`; resets failures and activates a
/// pending token. One statement, so concurrent callers (other tasks, other processes) can
/// never both succeed for one step. Returns `activated_step`, which equals `$2` exactly when
/// this statement activated the token (accepted steps strictly increase). `$1` id, `$4` now.
pub(crate) const ACCEPT_STEP: &str = "\
UPDATE tokens SET last_step = $2, failures = 0, \
state = CASE WHEN state = 'pending' THEN 'active' ELSE state END, \
activated_step = CASE WHEN state = 'pending' THEN $2 ELSE activated_step END, \
activated_at = COALESCE(activated_at, $4), last_used_at = $4, updated_at = $4 \
WHERE id = $1 AND state IN ('pending', 'active') \
AND (last_step IS NULL OR last_step < $2) AND failures < $3 \
RETURNING activated_step";

/// Why [`ACCEPT_STEP`] changed nothing. `$1` id.
pub(crate) const TOKEN_GATE_STATE: &str = "SELECT state, last_step, failures FROM tokens WHERE id = $1";

/// `$1` id, `$2` now. Returns the new count.
pub(crate) const RECORD_FAILURE: &str = "\
UPDATE tokens SET failures = failures + 1, updated_at = $2 WHERE id = $1 RETURNING failures";

/// `$1` id, `$2` ticket hash, `$3` user id, `$4` username, `$5` groups (JSON), `$6` source,
/// `$7` created at, `$8` expires at, `$9` ended at, `$10` end reason, `$11` token id,
/// `$12` last seen, `$13` gateway id, `$14` client key.
pub(crate) const INSERT_SESSION: &str = "\
INSERT INTO sessions (id, ticket_hash, user_id, username, group_names, source, created_at, \
expires_at, ended_at, end_reason, token_id, last_seen_at, gateway_id, client_key) \
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";

/// The columns a [`crate::SessionRecord`] is decoded from.
macro_rules! session_columns {
    () => {
        "id, ticket_hash, user_id, username, group_names, source, created_at, expires_at, ended_at, end_reason, \
         token_id, last_seen_at, gateway_id, client_key"
    };
}

/// Records the gateway a session resumed on. `$1` id, `$2` gateway id.
pub(crate) const MOVE_SESSION: &str = "UPDATE sessions SET gateway_id = $2 WHERE id = $1";

/// `$1` ticket hash.
pub(crate) const SESSION_BY_TICKET_HASH: &str =
    concat!("SELECT ", session_columns!(), " FROM sessions WHERE ticket_hash = $1");

/// The session one of whose resumes replaced the ticket hashing to `$1`.
pub(crate) const SESSION_BY_REPLACED_TICKET_HASH: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions WHERE id = (SELECT session_id FROM replaced_tickets WHERE hash = $1)"
);

/// A resume's ticket rotation, as a compare-and-swap on the current ticket's hash: PostgreSQL
/// re-checks the condition on the locked row, so of two resumes presenting one ticket only the
/// first changes it. `$1` id, `$2` presented ticket hash, `$3` new ticket hash, `$4` gateway id,
/// `$5` now.
pub(crate) const ROTATE_TICKET: &str = "\
UPDATE sessions SET ticket_hash = $3, gateway_id = $4 \
WHERE id = $1 AND ticket_hash = $2 AND ended_at IS NULL AND expires_at > $5";

/// Keeps a ticket the rotation replaced. `$1` its hash, `$2` session id, `$3` now.
pub(crate) const INSERT_REPLACED_TICKET: &str =
    "INSERT INTO replaced_tickets (hash, session_id, replaced_at) VALUES ($1, $2, $3)";

/// Live sessions of a user, oldest first (insertion order breaks ties within a second).
/// `$1` user id, `$2` now.
pub(crate) const LIVE_SESSIONS_FOR_USER: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions WHERE user_id = $1 AND ended_at IS NULL AND expires_at > $2 ORDER BY created_at, rowid"
);

/// Ids of a user's live sessions, oldest first. `$1` user id, `$2` now.
pub(crate) const LIVE_SESSION_IDS_FOR_USER: &str =
    "SELECT id FROM sessions WHERE user_id = $1 AND ended_at IS NULL AND expires_at > $2 ORDER BY created_at, rowid";

/// Every live session, oldest first. `$1` now, `$2` limit.
pub(crate) const LIVE_SESSIONS: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions WHERE ended_at IS NULL AND expires_at > $1 ORDER BY created_at, rowid LIMIT $2"
);

/// Takes the next position in the feed of session ends and returns it. Every transaction that
/// ends sessions runs this before it ends them and passes the number on as `end_seq`: the
/// counter's row stays locked (PostgreSQL) or the database write-locked (SQLite) until the
/// transaction commits, so positions become visible in increasing order.
pub(crate) const NEXT_SESSION_END_SEQ: &str = "\
UPDATE session_end_feed SET last_seq = last_seq + 1 WHERE id = 1 RETURNING last_seq";

/// The latest position handed out in the feed of session ends.
pub(crate) const SESSION_END_SEQ: &str = "SELECT last_seq FROM session_end_feed WHERE id = 1";

/// Ends every live session of a user. `$1` user id, `$2` now, `$3` reason, `$4` feed position
/// ([`NEXT_SESSION_END_SEQ`]), `$5` who ended them ([`crate::EndedBy::to_stored`]) or NULL.
pub(crate) const END_USER_SESSIONS: &str = "\
UPDATE sessions SET ended_at = $2, end_reason = $3, end_seq = $4, ended_by = $5 \
WHERE user_id = $1 AND ended_at IS NULL RETURNING id";

/// Ends every live session of a token's owner: those the token opened and those opened with a
/// temporary code or another token meanwhile, since the person's second factor is what changed.
/// `$1` token id, `$2` now, `$3` reason, `$4` feed position, `$5` who ended them.
pub(crate) const END_TOKEN_SESSIONS: &str = "\
UPDATE sessions SET ended_at = $2, end_reason = $3, end_seq = $4, ended_by = $5 \
WHERE user_id = (SELECT user_id FROM tokens WHERE id = $1) AND ended_at IS NULL";

/// Sessions whose end has a feed position after `$1`, with why and by whom, in feed order.
pub(crate) const SESSIONS_ENDED_AFTER: &str = "\
SELECT end_seq, id, end_reason, ended_by FROM sessions WHERE end_seq > $1 ORDER BY end_seq, id";

/// Records use of a session. `$1` id, `$2` now.
pub(crate) const TOUCH_SESSION: &str = "\
UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND (last_seen_at IS NULL OR last_seen_at < $2)";

/// Ends a session once; a later call keeps the first time, reason, feed position and who
/// ended it. `$1` id, `$2` now, `$3` reason, `$4` feed position, `$5` who ended it or NULL.
pub(crate) const END_SESSION: &str = "\
UPDATE sessions SET ended_at = $2, end_reason = $3, end_seq = $4, ended_by = $5 WHERE id = $1 AND ended_at IS NULL";

/// `$1` id.
pub(crate) const SESSION_EXISTS: &str = "SELECT id FROM sessions WHERE id = $1";

/// `$1` id.
pub(crate) const TOKEN_STATE: &str = "SELECT state FROM tokens WHERE id = $1";

/// Liveness probe.
pub(crate) const PING: &str = "SELECT 1";

// Declared after the macros above, which it uses.
mod approvals;
mod provisioning;
pub(crate) use approvals::*;
pub(crate) use provisioning::*;
