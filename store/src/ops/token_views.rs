//! Tokens as operators see them: one statement for the matching tokens and their
//! owners, one for the owners' groups, both in one read transaction so they agree.

use std::collections::HashMap;

use super::dialect::{Args, Db, DbRow, Pool};
use sqlx::Row;
use sqlx::query::Query;

use super::tokens::decode_token;
use crate::{StoreError, TokenQuery, TokenView, sql};

/// Tokens matching `query` with their owners and the owners' groups, newest first.
pub(super) async fn list(pool: &Pool, query: &TokenQuery) -> Result<Vec<TokenView>, StoreError> {
    let mut tx = pool
        .begin_with(super::dialect::BEGIN_READ)
        .await
        .map_err(StoreError::from_sqlx)?;
    let rows = bind_filter(sqlx::query(sql::LIST_TOKENS), query)
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    let group_rows = bind_filter(sqlx::query(sql::LIST_TOKEN_GROUPS), query)
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    tx.commit().await.map_err(StoreError::from_sqlx)?;

    let mut groups: HashMap<String, Vec<String>> = HashMap::new();
    for row in &group_rows {
        let user_id: String = row.try_get("user_id").map_err(StoreError::from_sqlx)?;
        let group: String = row.try_get("group_name").map_err(StoreError::from_sqlx)?;
        groups.entry(user_id).or_default().push(group);
    }
    for names in groups.values_mut() {
        // Sorted here rather than in SQL: collation order differs between backends.
        names.sort();
        names.dedup();
    }
    rows.iter().map(|row| decode_view(row, &groups)).collect()
}

/// Binds the parameters of `token_filter!` (`$1`..`$4`).
fn bind_filter<'q>(statement: Query<'q, Db, Args<'q>>, query: &'q TokenQuery) -> Query<'q, Db, Args<'q>> {
    statement
        .bind(query.user_id.as_deref())
        .bind(query.state.map(|state| state.as_str()))
        .bind(query.group.as_deref())
        .bind(query.live_only)
}

fn decode_view(row: &DbRow, groups: &HashMap<String, Vec<String>>) -> Result<TokenView, StoreError> {
    let get = StoreError::from_sqlx;
    let token = decode_token(row)?;
    let groups = groups.get(&token.user_id).cloned().unwrap_or_default();
    Ok(TokenView {
        username: row.try_get("username").map_err(get)?,
        display_name: row.try_get("display_name").map_err(get)?,
        groups,
        delivered_at: row.try_get("delivered_at").map_err(get)?,
        issued_by: row.try_get("issued_by").map_err(get)?,
        token,
    })
}
