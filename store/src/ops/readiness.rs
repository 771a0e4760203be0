//! Rehearsals and the readiness funnel's facts: a rehearsal is one insert; every person's
//! steps are read in one statement (a subquery per step, each on an indexed `user_id`) plus
//! one for their groups, in one read transaction, so a campaign of thousands is two round
//! trips and the counts come from one snapshot.

use std::collections::HashMap;

use sqlx::Row;

use super::dialect::{self, DbRow, Pool};
use crate::StoreError;
use crate::readiness::{ReadinessRow, Rehearsal, RehearsalCheck};

const INSERT: &str = "INSERT INTO rehearsals \
    (id, user_id, session_id, at, passed, resources, failed, detail, source, seq) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, (SELECT COALESCE(MAX(seq), 0) + 1 FROM rehearsals))";
/// The newest report: several may share a second, so by the order they were stored.
const LATEST: &str = "SELECT id, user_id, session_id, at, detail, source FROM rehearsals \
    WHERE user_id = $1 ORDER BY seq DESC LIMIT 1";

/// Each person's first time at each step, up to `$1`: the first registration code, the first
/// token activation, the first session, the first passed rehearsal, and the first session at
/// or after that rehearsal that no rehearsal ran in.
const STEPS: &str = "SELECT u.id, u.username, u.display_name, u.enabled, \
    (SELECT MIN(c.created_at) FROM registration_codes c WHERE c.user_id = u.id AND c.created_at <= $1) \
        AS code_issued_at, \
    (SELECT MIN(t.activated_at) FROM tokens t WHERE t.user_id = u.id AND t.activated_at <= $1) AS enrolled_at, \
    (SELECT MIN(s.created_at) FROM sessions s WHERE s.user_id = u.id AND s.created_at <= $1) \
        AS profile_set_up_at, \
    (SELECT MIN(r.at) FROM rehearsals r WHERE r.user_id = u.id AND r.passed AND r.at <= $1) \
        AS rehearsal_passed_at, \
    (SELECT MIN(s.created_at) FROM sessions s WHERE s.user_id = u.id AND s.created_at <= $1 \
        AND s.created_at >= (SELECT MIN(r.at) FROM rehearsals r WHERE r.user_id = u.id AND r.passed AND r.at <= $1) \
        AND NOT EXISTS (SELECT 1 FROM rehearsals q WHERE q.user_id = u.id AND q.session_id = s.id)) \
        AS first_connection_at \
    FROM users u";
const IN_GROUP: &str = " WHERE EXISTS (SELECT 1 FROM user_groups m WHERE m.user_id = u.id AND m.group_name = $2)";
const ALL_GROUPS: &str = "SELECT user_id, group_name FROM user_groups";
const GROUPS_OF_GROUP: &str = "SELECT g.user_id, g.group_name FROM user_groups g \
    WHERE EXISTS (SELECT 1 FROM user_groups m WHERE m.user_id = g.user_id AND m.group_name = $1)";

/// Stores a rehearsal; an unknown person is [`StoreError::NotFound`], an existing id
/// [`StoreError::Conflict`].
pub(super) async fn record(pool: &Pool, rehearsal: &Rehearsal) -> Result<(), StoreError> {
    let detail = serde_json::to_string(&rehearsal.checks)
        .map_err(|e| StoreError::Conflict(format!("rehearsal detail cannot be stored: {e}")))?;
    let count = |n: usize| i64::try_from(n).map_err(|_| StoreError::Conflict("too many resources".to_owned()));
    sqlx::query(INSERT)
        .bind(&rehearsal.id)
        .bind(&rehearsal.user_id)
        .bind(&rehearsal.session_id)
        .bind(rehearsal.at)
        .bind(rehearsal.passed())
        .bind(count(rehearsal.checks.len())?)
        .bind(count(rehearsal.failed())?)
        .bind(detail)
        .bind(&rehearsal.source)
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(StoreError::from_sqlx)
}

/// The person's newest rehearsal.
pub(super) async fn latest(pool: &Pool, user_id: &str) -> Result<Option<Rehearsal>, StoreError> {
    let row = sqlx::query(LATEST)
        .bind(user_id)
        .fetch_optional(pool)
        .await
        .map_err(StoreError::from_sqlx)?;
    row.as_ref().map(decode_rehearsal).transpose()
}

/// Every person (in `group`, if given) with the first time of each step up to `now`, sorted by
/// username.
pub(super) async fn readiness(pool: &Pool, group: Option<&str>, now: i64) -> Result<Vec<ReadinessRow>, StoreError> {
    let mut tx = pool
        .begin_with(dialect::BEGIN_READ)
        .await
        .map_err(StoreError::from_sqlx)?;
    let (steps, groups) = match group {
        Some(group) => {
            let steps = sqlx::query(&format!("{STEPS}{IN_GROUP}"))
                .bind(now)
                .bind(group)
                .fetch_all(&mut *tx)
                .await;
            let groups = sqlx::query(GROUPS_OF_GROUP).bind(group).fetch_all(&mut *tx).await;
            (steps, groups)
        }
        None => {
            let steps = sqlx::query(STEPS).bind(now).fetch_all(&mut *tx).await;
            let groups = sqlx::query(ALL_GROUPS).fetch_all(&mut *tx).await;
            (steps, groups)
        }
    };
    let (steps, groups) = (
        steps.map_err(StoreError::from_sqlx)?,
        groups.map_err(StoreError::from_sqlx)?,
    );
    tx.commit().await.map_err(StoreError::from_sqlx)?;
    let mut by_user: HashMap<String, Vec<String>> = HashMap::new();
    for row in &groups {
        let user_id: String = row.try_get("user_id").map_err(StoreError::from_sqlx)?;
        let group: String = row.try_get("group_name").map_err(StoreError::from_sqlx)?;
        by_user.entry(user_id).or_default().push(group);
    }
    let mut people = steps
        .iter()
        .map(|row| {
            let mut person = decode_row(row)?;
            let mut groups = by_user.remove(&person.user_id).unwrap_or_default();
            // Sorted here rather than in SQL: collation order differs between backends.
            groups.sort();
            person.groups = groups;
            Ok(person)
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    people.sort_by(|a, b| a.username.cmp(&b.username));
    Ok(people)
}

fn decode_row(row: &DbRow) -> Result<ReadinessRow, StoreError> {
    let get = StoreError::from_sqlx;
    Ok(ReadinessRow {
        user_id: row.try_get("id").map_err(get)?,
        username: row.try_get("username").map_err(get)?,
        display_name: row.try_get("display_name").map_err(get)?,
        groups: Vec::new(),
        enabled: row.try_get("enabled").map_err(get)?,
        code_issued_at: row.try_get("code_issued_at").map_err(get)?,
        enrolled_at: row.try_get("enrolled_at").map_err(get)?,
        profile_set_up_at: row.try_get("profile_set_up_at").map_err(get)?,
        rehearsal_passed_at: row.try_get("rehearsal_passed_at").map_err(get)?,
        first_connection_at: row.try_get("first_connection_at").map_err(get)?,
    })
}

fn decode_rehearsal(row: &DbRow) -> Result<Rehearsal, StoreError> {
    let get = StoreError::from_sqlx;
    let detail: String = row.try_get("detail").map_err(get)?;
    let checks: Vec<RehearsalCheck> =
        serde_json::from_str(&detail).map_err(|_| StoreError::corrupt("rehearsal detail is not valid JSON"))?;
    Ok(Rehearsal {
        id: row.try_get("id").map_err(get)?,
        user_id: row.try_get("user_id").map_err(get)?,
        session_id: row.try_get("session_id").map_err(get)?,
        at: row.try_get("at").map_err(get)?,
        checks,
        source: row.try_get("source").map_err(get)?,
    })
}
