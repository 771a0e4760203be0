//! The audit trail as the console reads it: the records of the configured audit folders that
//! match a filter, each checked against its own hash (a line that fails is counted, not shown);
//! flows per resource; and every stream verified as `rampart audit verify` does.

use super::{Provisioner, ServiceError};
use rampart_audit::anchor::StoreBook;
use rampart_audit::keys::read_public_key;
use rampart_audit::query::{Filter, query};
use rampart_audit::verify::{StreamReport, VerifyOptions, verify_paths};
use rampart_core::audit::Class;
use rampart_core::audit::checkpoint::key_id;
use serde_json::Value;

/// The most records one search keeps (the newest); a wider search is told to narrow.
pub const MAX_MATCHES: usize = 10_000;

/// Records found, oldest first, and how many lines were skipped because their hash failed.
#[derive(Debug, Default)]
pub struct AuditMatches {
    /// Matching records, oldest first: the newest [`MAX_MATCHES`] of them.
    pub records: Vec<Value>,
    /// How many records matched in all.
    pub total: usize,
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
        let (mut records, skipped) = found;
        let total = records.len();
        if total > MAX_MATCHES {
            records.drain(..total - MAX_MATCHES);
        }
        Ok(AuditMatches {
            records,
            total,
            skipped,
        })
    }
}

/// One resource's forwarded connections in a time range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceFlows {
    /// The resource.
    pub resource: String,
    /// Connections that ended normally.
    pub closed: u64,
    /// Connections that failed (target refused, unreachable, cut).
    pub failed: u64,
    /// Access decisions that refused a connection.
    pub refused: u64,
    /// Different people who connected or were refused.
    pub people: usize,
    /// Bytes from the target to the people.
    pub bytes_in: u64,
    /// Bytes from the people to the target.
    pub bytes_out: u64,
}

/// Flows and refusals per resource, from audit records (network activity and access
/// decisions), sorted by resource.
pub fn flows_by_resource(records: &[Value]) -> Vec<ResourceFlows> {
    let mut by: std::collections::BTreeMap<String, (ResourceFlows, std::collections::BTreeSet<String>)> =
        std::collections::BTreeMap::new();
    for record in records {
        let Some(resource) = record["dst_endpoint"]["svc_name"].as_str().filter(|r| !r.is_empty()) else {
            continue;
        };
        let class = record["class_uid"].as_u64();
        let network = class == Some(u64::from(Class::NetworkActivity.uid()));
        let decision = class == Some(u64::from(Class::Authorization.uid()));
        if !network && !decision {
            continue;
        }
        let (flows, people) = by.entry(resource.to_owned()).or_insert_with(|| {
            (
                ResourceFlows {
                    resource: resource.to_owned(),
                    ..ResourceFlows::default()
                },
                std::collections::BTreeSet::new(),
            )
        });
        let failed = record["status"].as_str() == Some("Failure");
        if network {
            if failed {
                flows.failed += 1;
            } else {
                flows.closed += 1;
            }
            flows.bytes_in += record["traffic"]["bytes_in"].as_u64().unwrap_or(0);
            flows.bytes_out += record["traffic"]["bytes_out"].as_u64().unwrap_or(0);
        } else if failed {
            flows.refused += 1;
        }
        if let Some(user) = record["user"]["name"].as_str() {
            people.insert(user.to_owned());
        }
    }
    by.into_values()
        .map(|(mut flows, people)| {
            flows.people = people.len();
            flows
        })
        .collect()
}

impl Provisioner {
    /// Verifies every audit stream in `console.audit_dirs`: with the checkpoint key's public
    /// half (`console.audit_public_key`) the signatures too, and the heads anchored in the
    /// store, so a cut tail or a deleted stream shows.
    pub async fn audit_integrity(&self) -> Result<Vec<StreamReport>, ServiceError> {
        let public_key = match &self.console.audit_public_key {
            Some(path) if path.exists() => {
                Some(read_public_key(path).map_err(|e| ServiceError::Unavailable(format!("audit public key: {e}")))?)
            }
            _ => None,
        };
        let anchors = match &public_key {
            Some(key) => Some(
                StoreBook::new(self.store.clone())
                    .anchors(&key_id(key))
                    .await
                    .map_err(|e| ServiceError::Unavailable(format!("cannot read the audit anchors: {e}")))?,
            ),
            None => None,
        };
        let dirs: Vec<_> = self.console.audit_dirs.iter().filter(|d| d.exists()).cloned().collect();
        let options = VerifyOptions {
            public_key,
            anchors,
            ..VerifyOptions::default()
        };
        tokio::task::spawn_blocking(move || verify_paths(&dirs, &options))
            .await
            .map_err(|e| ServiceError::Unavailable(format!("audit verification failed: {e}")))?
            .map_err(|e| ServiceError::Unavailable(format!("cannot read the audit trail: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flows_and_refusals_add_up_per_resource() {
        let flow = |user: &str, resource: &str, status: &str, bytes: u64| {
            json!({"class_uid": Class::NetworkActivity.uid(), "status": status, "user": {"name": user},
                   "dst_endpoint": {"svc_name": resource}, "traffic": {"bytes_in": bytes, "bytes_out": 1}})
        };
        let refusal = |user: &str, resource: &str| {
            json!({"class_uid": Class::Authorization.uid(), "status": "Failure", "user": {"name": user},
                   "dst_endpoint": {"svc_name": resource}})
        };
        let records = vec![
            flow("alice", "echo", "Success", 10),
            flow("bob", "echo", "Success", 5),
            flow("alice", "echo", "Failure", 0),
            refusal("carol", "echo"),
            refusal("carol", "payroll"),
            json!({"class_uid": Class::Authentication.uid(), "status": "Success", "user": {"name": "dave"}}),
        ];
        let flows = flows_by_resource(&records);
        assert_eq!(flows.len(), 2);
        assert_eq!(
            flows[0],
            ResourceFlows {
                resource: "echo".into(),
                closed: 2,
                failed: 1,
                refused: 1,
                people: 3,
                bytes_in: 15,
                bytes_out: 3,
            }
        );
        assert_eq!(
            (flows[1].resource.as_str(), flows[1].refused, flows[1].closed),
            ("payroll", 1, 0)
        );
    }
}
