//! The policy in force and its reloads: on SIGHUP, when the file changes (checked by content
//! hash every few seconds), or on an operator's request. A valid file takes effect for new
//! streams; an invalid one is rejected with every problem logged and the old policy stays.

use crate::metrics::Metrics;
use rampart_api::gateway::PolicyStatus;
use rampart_core::policy::Policy;
use ring::digest::{SHA256, digest};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

/// A policy with where and when it came from.
#[derive(Debug)]
pub(crate) struct LoadedPolicy {
    pub policy: Arc<Policy>,
    pub sha256: String,
    pub loaded_at: i64,
}

/// The policy in force, swappable while connections read it.
#[derive(Debug)]
pub(crate) struct PolicyHolder {
    path: Option<PathBuf>,
    current: RwLock<Arc<LoadedPolicy>>,
    /// Hash and problems of the latest rejected file, so it is not re-parsed every tick.
    rejected: Mutex<Option<(String, Vec<String>)>>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(digest(&SHA256, bytes))
}

impl PolicyHolder {
    /// A policy that came from `path` (reloadable) or from code (`path` None).
    pub fn new(policy: Policy, path: Option<PathBuf>, text: Option<&str>, now: i64) -> Self {
        let sha256 = text.map(|t| sha256_hex(t.as_bytes())).unwrap_or_default();
        Self {
            path,
            current: RwLock::new(Arc::new(LoadedPolicy {
                policy: Arc::new(policy),
                sha256,
                loaded_at: now,
            })),
            rejected: Mutex::new(None),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// The policy in force now.
    pub fn policy(&self) -> Arc<Policy> {
        self.loaded().policy.clone()
    }

    fn loaded(&self) -> Arc<LoadedPolicy> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the policy (embedding and tests).
    pub fn set(&self, policy: Policy, now: i64) {
        self.swap(policy, String::new(), now);
    }

    fn swap(&self, policy: Policy, sha256: String, now: i64) {
        let loaded = Arc::new(LoadedPolicy {
            policy: Arc::new(policy),
            sha256,
            loaded_at: now,
        });
        match self.current.write() {
            Ok(mut g) => *g = loaded,
            Err(poisoned) => *poisoned.into_inner() = loaded,
        }
        *self.rejected.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// What is in force and the problems of a rejected edit.
    pub fn status(&self) -> PolicyStatus {
        let loaded = self.loaded();
        let rejected = self
            .rejected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|(_, problems)| problems.clone())
            .unwrap_or_default();
        PolicyStatus {
            path: self.path.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            sha256: loaded.sha256.clone(),
            loaded_at: loaded.loaded_at,
            resources: loaded.policy.resources().count(),
            rules: loaded.policy.rule_count(),
            rejected,
            reloaded: None,
        }
    }

    /// Reloads the file if its content differs from the policy in force (and from the last
    /// rejected content, unless `force`). `Ok(true)` when a new policy took effect, `Ok(false)`
    /// when the file is the policy in force (a refused edit's problems are then forgotten).
    pub async fn reload(&self, force: bool, now: i64, metrics: &Metrics) -> Result<bool, Vec<String>> {
        let Some(path) = self.path.clone() else {
            return Err(vec!["this gateway's policy was not loaded from a file".into()]);
        };
        let _one = self.reloading.lock().await;
        let text = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            Err(e) => {
                let problems = vec![format!("cannot read {}: {e}", path.display())];
                if force {
                    tracing::error!(target: "rampart::policy", path = %path.display(), error = %e, "policy reload failed");
                    metrics.policy_reload(false);
                }
                return Err(problems);
            }
        };
        let sha256 = sha256_hex(&text);
        if sha256 == self.loaded().sha256 {
            // The file is the policy in force again (an edit undone): a refused edit's
            // problems no longer describe it.
            let undone = self.rejected.lock().unwrap_or_else(PoisonError::into_inner).take();
            if undone.is_some() {
                tracing::info!(
                    target: "rampart::policy", path = %path.display(), sha256 = %sha256,
                    "policy file is the policy in force again; the refused edit is forgotten"
                );
            }
            return Ok(false);
        }
        let known_bad = self
            .rejected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|(hash, _)| *hash == sha256)
            .map(|(_, problems)| problems.clone());
        if let (Some(problems), false) = (&known_bad, force) {
            return Err(problems.clone());
        }
        let parsed = std::str::from_utf8(&text)
            .map_err(|_| vec!["file: not UTF-8 text".to_owned()])
            .and_then(|t| Policy::parse(t).map_err(|e| e.0.iter().map(ToString::to_string).collect()));
        match parsed {
            Ok(policy) => {
                tracing::info!(
                    target: "rampart::policy", path = %path.display(), sha256 = %sha256,
                    resources = policy.resources().count(), rules = policy.rule_count(), "policy reloaded"
                );
                self.swap(policy, sha256, now);
                metrics.policy_reload(true);
                Ok(true)
            }
            Err(problems) => {
                for p in &problems {
                    tracing::error!(target: "rampart::policy", path = %path.display(), problem = %p, "policy edit rejected; the previous policy stays in force");
                }
                metrics.policy_reload(false);
                *self.rejected.lock().unwrap_or_else(PoisonError::into_inner) = Some((sha256, problems.clone()));
                Err(problems)
            }
        }
    }
}
