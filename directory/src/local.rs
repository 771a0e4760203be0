//! The embedded directory: users, groups and argon2id hashes kept in the Rampart store.

use crate::password::{hash_password, verify_password};
use crate::{
    Directory, DirectoryError, DirectoryUser, GroupRoster, LeftOut, LeftOutReason, ReachedPerson, RejectReason,
    Rejection, refuse_blank,
};
use rampart_core::secret::Sensitive;
use rampart_store::{Store, UserRecord};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// How many password hashes may run at once.
const CONCURRENT_HASHES: usize = 4;

/// Users kept in the store; the default when no LDAP directory is configured.
#[derive(Debug, Clone)]
pub struct LocalDirectory {
    store: Arc<dyn Store>,
    hashing: Arc<Semaphore>,
    /// Hash checked for unknown users, so they take as long as known ones.
    decoy_hash: Arc<str>,
}

impl LocalDirectory {
    /// A directory over `store`.
    pub fn new(store: Arc<dyn Store>) -> Result<Self, crate::PasswordError> {
        Ok(Self {
            store,
            hashing: Arc::new(Semaphore::new(CONCURRENT_HASHES)),
            decoy_hash: hash_password("rampart-decoy")?.into(),
        })
    }

    async fn check(&self, password: &Sensitive<String>, hash: &str) -> Result<bool, DirectoryError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|_| DirectoryError::Unavailable("shutting down".into()))?;
        let password = password.clone();
        let hash = hash.to_owned();
        tokio::task::spawn_blocking(move || verify_password(password.expose(), &hash))
            .await
            .map_err(|_| DirectoryError::Unavailable("password check aborted".into()))?
            .map_err(|e| DirectoryError::Unavailable(e.to_string()))
    }

    async fn find(&self, username: &str) -> Result<Option<UserRecord>, DirectoryError> {
        self.store
            .user_by_username(username)
            .await
            .map_err(|e| DirectoryError::Unavailable(e.to_string()))
    }
}

fn to_user(record: UserRecord) -> DirectoryUser {
    DirectoryUser {
        stable_id: record.id,
        username: record.username,
        display_name: record.display_name,
        groups: record.groups,
        email: None,
    }
}

#[async_trait::async_trait]
impl Directory for LocalDirectory {
    async fn authenticate(
        &self,
        username: &str,
        password: &Sensitive<String>,
    ) -> Result<DirectoryUser, DirectoryError> {
        refuse_blank(password)?;
        let Some(record) = self.find(username).await? else {
            let _ = self.check(password, &self.decoy_hash).await;
            return Err(DirectoryError::Rejected(Rejection::anonymous(
                RejectReason::UnknownUser,
            )));
        };
        let refused = |reason| {
            let person = ReachedPerson {
                stable_id: record.id.clone(),
                username: record.username.clone(),
            };
            DirectoryError::Rejected(Rejection::of(reason, Some(person)))
        };
        let Some(hash) = record.password_hash.as_deref() else {
            let _ = self.check(password, &self.decoy_hash).await;
            return Err(refused(RejectReason::WrongPassword));
        };
        if !self.check(password, hash).await? {
            return Err(refused(RejectReason::WrongPassword));
        }
        if !record.enabled {
            return Err(refused(RejectReason::Disabled));
        }
        Ok(to_user(record))
    }

    async fn lookup(&self, username: &str) -> Result<Option<DirectoryUser>, DirectoryError> {
        Ok(self.find(username).await?.filter(|r| r.enabled).map(to_user))
    }

    async fn group_members(&self, group: &str) -> Result<Vec<DirectoryUser>, DirectoryError> {
        Ok(self.group_roster(group).await?.members)
    }

    async fn group_roster(&self, group: &str) -> Result<GroupRoster, DirectoryError> {
        let records = self
            .store
            .users_in_group(group)
            .await
            .map_err(|e| DirectoryError::Unavailable(e.to_string()))?;
        let (enabled, disabled): (Vec<UserRecord>, Vec<UserRecord>) = records.into_iter().partition(|r| r.enabled);
        let mut members: Vec<DirectoryUser> = enabled.into_iter().map(to_user).collect();
        members.sort_by(|a, b| a.username.cmp(&b.username));
        let mut left_out: Vec<LeftOut> = disabled
            .into_iter()
            .map(|r| LeftOut {
                name: r.username,
                reason: LeftOutReason::Disabled,
            })
            .collect();
        left_out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(GroupRoster { members, left_out })
    }

    async fn lookup_any(&self, username: &str) -> Result<Option<(DirectoryUser, bool)>, DirectoryError> {
        Ok(self.find(username).await?.map(|r| {
            let enabled = r.enabled;
            (to_user(r), enabled)
        }))
    }
}
