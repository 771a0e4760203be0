//! Operators: people and scripts with API keys. Keys are shown once at creation and stored
//! hashed; withdrawing one takes effect on the next request.

use super::{Provisioner, ServiceError, random_hex};
use crate::api::{CreatedOperator, OperatorInfo};
use crate::auth::{key_hash, new_api_key};
use rampart_store::{OperatorRecord, OperatorRole};

/// Longest operator name.
const MAX_NAME_LEN: usize = 64;

impl Provisioner {
    /// Creates an operator with a fresh API key.
    pub async fn create_operator(&self, actor: &str, name: &str, role: &str) -> Result<CreatedOperator, ServiceError> {
        let name = name.trim();
        if name.is_empty()
            || name.len() > MAX_NAME_LEN
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
        {
            return Err(ServiceError::Invalid(format!(
                "operator names are 1 to {MAX_NAME_LEN} letters, digits, '-', '_', '.' or '@'"
            )));
        }
        let role = OperatorRole::parse(role.trim())
            .ok_or_else(|| ServiceError::Invalid("role must be admin, helpdesk or auditor".into()))?;
        let (record, api_key) = new_operator(name, role, actor, self.now())?;
        self.store.insert_operator(&record).await.map_err(|e| match e {
            rampart_store::StoreError::Conflict(_) => {
                ServiceError::Conflict(format!("an operator named {name:?} exists"))
            }
            other => other.into(),
        })?;
        tracing::info!(target: "rampart::provisioner", operator = actor, created = name, role = %role, "operator created");
        Ok(CreatedOperator {
            operator: operator_info(&record),
            api_key,
        })
    }

    /// Every operator.
    pub async fn list_operators(&self) -> Result<Vec<OperatorInfo>, ServiceError> {
        Ok(self.store.list_operators().await?.iter().map(operator_info).collect())
    }

    /// Withdraws an operator's key.
    pub async fn revoke_operator(&self, actor: &str, name: &str) -> Result<(), ServiceError> {
        if name == actor {
            return Err(ServiceError::Conflict(
                "an operator cannot withdraw their own key".into(),
            ));
        }
        self.store
            .revoke_operator(name, self.now())
            .await
            .map_err(|e| match e {
                rampart_store::StoreError::NotFound => {
                    ServiceError::NotFound(format!("no active operator named {name:?}"))
                }
                other => other.into(),
            })?;
        tracing::info!(target: "rampart::provisioner", operator = actor, revoked = name, "operator key withdrawn");
        Ok(())
    }
}

/// A new operator record and its API key (to show once).
pub fn new_operator(
    name: &str,
    role: OperatorRole,
    created_by: &str,
    now: i64,
) -> Result<(OperatorRecord, String), ServiceError> {
    let api_key = new_api_key().map_err(|_| ServiceError::Unavailable("the system random generator failed".into()))?;
    Ok((
        OperatorRecord {
            id: random_hex(16)?,
            name: name.to_owned(),
            role,
            key_hash: key_hash(&api_key),
            created_at: now,
            created_by: created_by.to_owned(),
            revoked_at: None,
        },
        api_key,
    ))
}

fn operator_info(record: &OperatorRecord) -> OperatorInfo {
    OperatorInfo {
        name: record.name.clone(),
        role: record.role.as_str().into(),
        created_at: record.created_at,
        created_by: record.created_by.clone(),
        revoked_at: record.revoked_at,
    }
}
