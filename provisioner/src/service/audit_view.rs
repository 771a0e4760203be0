//! The audit trail as the console reads it: the records of the configured audit folders that
//! match a filter, each checked against its own hash (a line that fails is counted, not shown).

use super::{Provisioner, ServiceError};
use rampart_audit::query::{Filter, query};
use serde_json::Value;

/// Records found, oldest first, and how many lines were skipped because their hash failed.
#[derive(Debug, Default)]
pub struct AuditMatches {
    /// Matching records, oldest first.
    pub records: Vec<Value>,
    /// Lines skipped (altered, or cut mid-write).
    pub skipped: u64,
}

impl Provisioner {
    /// The records of `console.audit_dirs` matching `filter`.
    pub async fn search_audit(&self, filter: Filter) -> Result<AuditMatches, ServiceError> {
        let dirs: Vec<_> = self
            .console
            .audit_dirs
            .iter()
            .filter(|dir| dir.exists())
            .cloned()
            .collect();
        if dirs.is_empty() {
            return Ok(AuditMatches::default());
        }
        let found = tokio::task::spawn_blocking(move || query(&dirs, &filter))
            .await
            .map_err(|e| ServiceError::Unavailable(format!("audit search failed: {e}")))?
            .map_err(|e| ServiceError::Unavailable(format!("cannot read the audit trail: {e}")))?;
        Ok(AuditMatches {
            records: found.0,
            skipped: found.1,
        })
    }
}
