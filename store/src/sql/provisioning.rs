//! SQL for the provisioner's side of the store: issuing and delivering tokens, operator
//! changes to a token, the token history, temporary codes, operators and re-sealing. Same
//! dialect rules as the parent module; every conditional change is one statement.

// ----- users -----

/// Every user with at least one row in group `$1`, joined with all of their groups (one row
/// per group). Sorted by the caller.
pub(crate) const USERS_IN_GROUP: &str = concat!(
    select_user!(),
    " WHERE u.id IN (SELECT user_id FROM user_groups WHERE group_name = $1)"
);

// ----- issuing and delivery -----

/// Like [`INSERT_TOKEN`](super::INSERT_TOKEN) plus `$16` delivered at (NULL while a bulk run
/// has not yet written the person's QR code) and `$17` issued by.
pub(crate) const ISSUE_TOKEN: &str = "\
INSERT INTO tokens (id, user_id, state, algorithm, digits, period, time_window, key_id, \
sealed_seed, last_step, failures, created_at, activated_at, last_used_at, drift_steps, updated_at, \
delivered_at, issued_by) \
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $12, $16, $17)";

/// The user's live token and whether its seed was delivered. `$1` user id.
pub(crate) const LIVE_TOKEN_DELIVERY: &str = "\
SELECT id, delivered_at FROM tokens WHERE user_id = $1 AND state IN ('pending', 'active')";

/// Revokes a live token in favour of a new one. `$1` id, `$2` now.
pub(crate) const REPLACE_TOKEN: &str = "\
UPDATE tokens SET state = 'revoked', updated_at = $2 \
WHERE id = $1 AND state IN ('pending', 'active')";

/// Marks a token delivered once; returns its owner when it changed. `$1` id, `$2` now.
pub(crate) const CONFIRM_DELIVERY: &str = "\
UPDATE tokens SET delivered_at = $2, updated_at = $2 \
WHERE id = $1 AND delivered_at IS NULL RETURNING user_id";

// ----- reading tokens -----

/// `$1` id, any state.
pub(crate) const TOKEN_BY_ID: &str = concat!(select_token!(), " WHERE id = $1");

/// The filter of [`LIST_TOKENS`] over `tokens t`: a NULL parameter matches everything.
/// `$1` user id, `$2` state, `$3` group of the owner, `$4` live tokens only.
macro_rules! token_filter {
    () => {
        " WHERE ($1 IS NULL OR t.user_id = $1) AND ($2 IS NULL OR t.state = $2) \
         AND ($3 IS NULL OR EXISTS (SELECT 1 FROM user_groups m \
         WHERE m.user_id = t.user_id AND m.group_name = $3)) \
         AND (NOT $4 OR t.state IN ('pending', 'active'))"
    };
}

/// Tokens matching [`token_filter!`] with their owners, newest first.
pub(crate) const LIST_TOKENS: &str = concat!(
    "SELECT t.id, t.user_id, t.state, t.algorithm, t.digits, t.period, t.time_window, t.key_id, \
     t.sealed_seed, t.last_step, t.failures, t.created_at, t.activated_at, t.last_used_at, \
     t.drift_steps, t.delivered_at, t.issued_by, u.username, u.display_name \
     FROM tokens t JOIN users u ON u.id = t.user_id",
    token_filter!(),
    " ORDER BY t.created_at DESC, t.id"
);

/// The groups of every owner of a token that [`LIST_TOKENS`] returns with the same
/// parameters: one query for all owners however many there are.
pub(crate) const LIST_TOKEN_GROUPS: &str = concat!(
    "SELECT g.user_id, g.group_name FROM user_groups g \
     WHERE g.user_id IN (SELECT t.user_id FROM tokens t",
    token_filter!(),
    ")"
);

// ----- operator changes to one token -----

/// Moves a live token to terminal state `$2`; returns its owner. `$1` id, `$3` now.
pub(crate) const END_LIVE_TOKEN: &str = "\
UPDATE tokens SET state = $2, updated_at = $3 \
WHERE id = $1 AND state IN ('pending', 'active') RETURNING user_id";

/// Resets a live token's failures; returns its owner. `$1` id, `$2` now.
pub(crate) const UNLOCK_TOKEN: &str = "\
UPDATE tokens SET failures = 0, updated_at = $2 \
WHERE id = $1 AND state IN ('pending', 'active') RETURNING user_id";

/// Resets the failures of a live token that is locked (at least `$3` failures); returns its
/// owner. `$1` id, `$2` now. A token that is not locked is left alone.
pub(crate) const UNLOCK_LOCKED_TOKEN: &str = "\
UPDATE tokens SET failures = 0, updated_at = $2 \
WHERE id = $1 AND state IN ('pending', 'active') AND failures >= $3 RETURNING user_id";

/// Resynchronises a live token: step `$2` becomes the last accepted step and `$4` the device's
/// drift in steps, failures reset, a pending token becomes active. Returns its owner. `$1` id,
/// `$3` now. Like [`ACCEPT_STEP`](super::ACCEPT_STEP), only a step after the last accepted one
/// is taken: moving the mark back would make codes that were already accepted valid again.
pub(crate) const RESYNC_TOKEN: &str = "\
UPDATE tokens SET last_step = $2, drift_steps = $4, failures = 0, state = 'active', \
activated_at = COALESCE(activated_at, $3), updated_at = $3 \
WHERE id = $1 AND state IN ('pending', 'active') AND (last_step IS NULL OR last_step < $2) \
RETURNING user_id";

// ----- history -----

/// `$1` at, `$2` actor, `$3` action, `$4` user id, `$5` token id, `$6` detail. The store
/// assigns `seq`.
pub(crate) const INSERT_TOKEN_EVENT: &str = "\
INSERT INTO token_events (at, actor, action, user_id, token_id, detail) \
VALUES ($1, $2, $3, $4, $5, $6)";

/// The `$2` most recent events of user `$1`, oldest first.
pub(crate) const TOKEN_EVENTS_FOR_USER: &str = "\
SELECT seq, at, actor, action, user_id, token_id, detail FROM (\
SELECT seq, at, actor, action, user_id, token_id, detail FROM token_events \
WHERE user_id = $1 ORDER BY seq DESC LIMIT $2) AS recent ORDER BY seq";

/// The `$1` most recent events of everyone, oldest first.
pub(crate) const TOKEN_EVENTS_ALL: &str = "\
SELECT seq, at, actor, action, user_id, token_id, detail FROM (\
SELECT seq, at, actor, action, user_id, token_id, detail FROM token_events \
ORDER BY seq DESC LIMIT $1) AS recent ORDER BY seq";

// ----- temporary codes -----

/// Withdraws the user's unused codes (marks them used). `$1` user id, `$2` now.
pub(crate) const WITHDRAW_TEMP_CODES: &str = "\
UPDATE temp_codes SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL";

/// `$1` id, `$2` user id, `$3` code hash, `$4` created at, `$5` expires at, `$6` created by.
pub(crate) const INSERT_TEMP_CODE: &str = "\
INSERT INTO temp_codes (id, user_id, code_hash, created_at, expires_at, used_at, created_by) \
VALUES ($1, $2, $3, $4, $5, NULL, $6)";

/// Uses the user's unused, unexpired code with this hash, in one statement, so concurrent
/// callers (tasks or processes) cannot both use it. Returns the code's id. `$1` user id,
/// `$2` code hash, `$3` now.
pub(crate) const CONSUME_TEMP_CODE: &str = "\
UPDATE temp_codes SET used_at = $3 \
WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL AND expires_at > $3 \
RETURNING id";

/// Counts a wrong temporary code against each of the user's unused, unexpired codes, and
/// spends those that reach the limit. Returns each code's id and whether it was spent.
/// `$1` user id, `$2` now, `$3` limit.
pub(crate) const FAIL_TEMP_CODES: &str = "\
UPDATE temp_codes SET failures = failures + 1, \
used_at = CASE WHEN failures + 1 >= $3 THEN $2 ELSE used_at END \
WHERE user_id = $1 AND used_at IS NULL AND expires_at > $2 \
RETURNING id, used_at IS NOT NULL";

// ----- operators -----

/// `$1` id, `$2` name, `$3` role, `$4` key hash, `$5` created at, `$6` created by,
/// `$7` revoked at.
pub(crate) const INSERT_OPERATOR: &str = "\
INSERT INTO operators (id, name, role, key_hash, created_at, created_by, revoked_at) \
VALUES ($1, $2, $3, $4, $5, $6, $7)";

macro_rules! select_operator {
    () => {
        "SELECT id, name, role, key_hash, created_at, created_by, revoked_at FROM operators"
    };
}

/// `$1` key hash.
pub(crate) const OPERATOR_BY_KEY_HASH: &str = concat!(select_operator!(), " WHERE key_hash = $1");

/// Every operator (sorted by the caller).
pub(crate) const LIST_OPERATORS: &str = select_operator!();

/// Withdraws a key once. `$1` name, `$2` now.
pub(crate) const REVOKE_OPERATOR: &str = "\
UPDATE operators SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL";

// ----- re-sealing -----

/// Every token's sealed seed.
pub(crate) const SEALED_SEEDS: &str = "SELECT id, key_id, sealed_seed FROM tokens ORDER BY id";

/// Compare and swap of a sealed seed: `$1` id, `$2`/`$3` expected key id and blob,
/// `$4`/`$5` new key id and blob.
pub(crate) const RESEAL: &str = "\
UPDATE tokens SET key_id = $4, sealed_seed = $5 \
WHERE id = $1 AND key_id = $2 AND sealed_seed = $3";
