//! The LDAP directory (OpenLDAP, Active Directory): find the person with the service account
//! (username escaped per RFC 4515), refuse disabled accounts, bind as the person on a
//! connection never used for service searches, read their groups, key them by a stable id.
//! `members` lists the people in a group for enrolment.

mod bind;
pub(crate) mod check;
mod config;
mod entry;
mod members;
mod pool;

pub use config::{DisabledRule, GroupMode, LdapConfig};

use crate::{
    Directory, DirectoryError, DirectoryUser, GroupRoster, ReachedPerson, RejectReason, Rejection, is_blank,
    refuse_blank,
};
use bind::BindOutcome;
use entry::{Entry, dn_within, fill_filter, first_rdn_value, group_filter, is_disabled, stable_id};
use ldap3::{ResultEntry, Scope, SearchEntry, SearchOptions};
use pool::{Pool, Servers};
use rampart_core::secret::Sensitive;
use rampart_core::username::normalize_username;
use std::sync::Arc;

/// LDAP result code when more entries matched than the size limit allows.
const SIZE_LIMIT_EXCEEDED: u32 = 4;

/// What `check-directory` shows an operator about one person.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// The person's DN.
    pub dn: String,
    /// The stable identifier tokens are keyed by.
    pub stable_id: Option<String>,
    /// Normalised username from the directory.
    pub username: String,
    /// Group names.
    pub groups: Vec<String>,
    /// False when a disabled rule matched.
    pub enabled: bool,
    /// Whether a bind with the given password succeeded (None when no password was given).
    pub password_ok: Option<bool>,
    /// Why the directory refused that bind (wrong password, locked, …), when it did.
    pub password_refusal: Option<RejectReason>,
}

/// A directory served by one or more LDAP servers.
#[derive(Debug)]
pub struct LdapDirectory {
    config: Arc<LdapConfig>,
    service: Pool,
    binds: Pool,
}

impl LdapDirectory {
    /// Validates the settings, loads the CA and the service password. Opens no connection yet.
    pub fn new(config: LdapConfig) -> Result<Self, String> {
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        let tls = match &config.ca_file {
            Some(path) => Some(Arc::new(tls_config(path)?)),
            None => None,
        };
        let password = config.bind_password()?;
        let servers = Arc::new(Servers::new(&config, tls));
        let service = Pool::new(
            servers.clone(),
            config.pool_size,
            Some((config.bind_dn.clone(), password)),
        );
        let binds = Pool::new(servers, config.pool_size, None);
        Ok(Self {
            config: Arc::new(config),
            service,
            binds,
        })
    }

    /// Finds a person, their groups and state; checks `password` when given. For operators.
    pub async fn inspect(
        &self,
        username: &str,
        password: Option<&Sensitive<String>>,
    ) -> Result<Option<Inspection>, DirectoryError> {
        let Some(entry) = self.find(username).await? else {
            return Ok(None);
        };
        let groups = self.groups(&entry).await?;
        let password_refusal = match password {
            Some(p) if !is_blank(p.expose()) => match self.bind_as(&entry.dn, p).await? {
                BindOutcome::Accepted => Some(None),
                BindOutcome::Refused(reason) => Some(Some(reason)),
                BindOutcome::Unavailable(detail) => return Err(unavailable(detail)),
            },
            Some(_) => Some(Some(RejectReason::EmptyPassword)),
            None => None,
        };
        Ok(Some(Inspection {
            stable_id: stable_id(&entry, &self.config.id_attribute),
            username: self.username_of(&entry, username),
            groups,
            enabled: !is_disabled(&entry, &self.config.disabled_when),
            password_ok: password_refusal.map(|refusal| refusal.is_none()),
            password_refusal: password_refusal.flatten(),
            dn: entry.dn,
        }))
    }

    fn username_of(&self, entry: &Entry, typed: &str) -> String {
        entry
            .first(&self.config.username_attribute)
            .and_then(|u| normalize_username(u).ok())
            .unwrap_or_else(|| typed.to_owned())
    }

    /// Searches for exactly one person; none or several is `None`.
    async fn find(&self, username: &str) -> Result<Option<Entry>, DirectoryError> {
        let filter = fill_filter(&self.config.user_filter, username);
        let attrs = self.user_attributes();
        let mut lease = self.service.get().await.map_err(unavailable)?;
        let result = lease
            .ldap()
            .map_err(unavailable)?
            .with_search_options(SearchOptions::new().sizelimit(2))
            .search(&self.config.user_base, Scope::Subtree, &filter, attrs)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        lease.keep();
        let (entries, outcome) = (result.0, result.1);
        if outcome.rc == SIZE_LIMIT_EXCEEDED || entries.len() > 1 {
            tracing::warn!(target: "rampart::directory", user = %username, "several directory entries match; refusing");
            return Ok(None);
        }
        if outcome.rc != 0 && outcome.rc != 32 {
            return Err(unavailable(format!("user search failed (LDAP result {})", outcome.rc)));
        }
        Ok(entries.into_iter().next().map(to_entry))
    }

    /// The attributes read from a person's entry.
    fn user_attributes(&self) -> Vec<String> {
        let mut attrs = vec![
            self.config.username_attribute.clone(),
            self.config.id_attribute.clone(),
            self.config.display_name_attribute.clone(),
            self.config.mail_attribute.clone(),
        ];
        if self.config.group_mode == GroupMode::MemberOf {
            attrs.push("memberOf".into());
        }
        attrs.extend(self.config.disabled_when.iter().map(|r| r.attribute.clone()));
        attrs
    }

    /// A group entry's name, as people's group lists report it.
    fn group_name(&self, group: &Entry) -> Option<String> {
        match self.config.group_mode {
            GroupMode::MemberOf => first_rdn_value(&group.dn),
            _ => group
                .first(&self.config.group_name_attribute)
                .map(str::to_owned)
                .or_else(|| first_rdn_value(&group.dn)),
        }
    }

    async fn groups(&self, entry: &Entry) -> Result<Vec<String>, DirectoryError> {
        let mut names = match self.config.group_mode {
            // A `memberOf` value names its group by DN: only groups under `group_base` count, so a
            // same-named group elsewhere (a self-service list in another branch) grants nothing.
            GroupMode::MemberOf => entry
                .values("memberOf")
                .iter()
                .filter(|dn| {
                    self.config
                        .group_base
                        .as_deref()
                        .is_some_and(|base| dn_within(dn, base))
                })
                .filter_map(|dn| first_rdn_value(dn))
                .collect(),
            mode => {
                let base = self.config.group_base.as_deref().unwrap_or_default();
                let filter = group_filter(&entry.dn, mode == GroupMode::AdNested);
                let attrs = vec![self.config.group_name_attribute.clone()];
                let mut lease = self.service.get().await.map_err(unavailable)?;
                let (found, outcome) = lease
                    .ldap()
                    .map_err(unavailable)?
                    .search(base, Scope::Subtree, &filter, attrs)
                    .await
                    .map_err(|e| unavailable(e.to_string()))?
                    .success()
                    .map_err(|e| unavailable(format!("group search failed: {e}")))?;
                lease.keep();
                let _ = outcome;
                found
                    .into_iter()
                    .filter(|raw| !raw.is_ref() && !raw.is_intermediate())
                    .filter_map(|raw| self.group_name(&to_entry(raw)))
                    .collect::<Vec<String>>()
            }
        };
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Binds as `dn` on a connection reserved for user binds, asking for the password policy
    /// control; a server that is busy or unavailable is an error, every refusal an outcome.
    async fn bind_as(&self, dn: &str, password: &Sensitive<String>) -> Result<BindOutcome, DirectoryError> {
        let mut lease = self.binds.get().await.map_err(unavailable)?;
        let result = lease
            .ldap()
            .map_err(unavailable)?
            .with_controls(bind::policy_request())
            .simple_bind(dn, password.expose())
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        match bind::outcome(&result) {
            BindOutcome::Unavailable(detail) => Err(unavailable(detail)),
            outcome => {
                lease.keep();
                Ok(outcome)
            }
        }
    }
}

#[async_trait::async_trait]
impl Directory for LdapDirectory {
    async fn authenticate(
        &self,
        username: &str,
        password: &Sensitive<String>,
    ) -> Result<DirectoryUser, DirectoryError> {
        refuse_blank(password)?;
        let entry = self
            .find(username)
            .await?
            .ok_or(DirectoryError::Rejected(Rejection::anonymous(
                RejectReason::UnknownUser,
            )))?;
        // From here on the name has reached a person: every refusal says whom.
        let refused = |reason| {
            let person = stable_id(&entry, &self.config.id_attribute).map(|stable_id| ReachedPerson {
                stable_id,
                username: self.username_of(&entry, username),
            });
            DirectoryError::Rejected(Rejection::of(reason, person))
        };
        if is_disabled(&entry, &self.config.disabled_when) {
            return Err(refused(RejectReason::Disabled));
        }
        match self.bind_as(&entry.dn, password).await? {
            BindOutcome::Accepted => {}
            BindOutcome::Refused(reason) => return Err(refused(reason)),
            BindOutcome::Unavailable(detail) => return Err(unavailable(detail)),
        }
        self.to_user(entry, username).await
    }

    async fn lookup(&self, username: &str) -> Result<Option<DirectoryUser>, DirectoryError> {
        match self.find(username).await? {
            Some(entry) if !is_disabled(&entry, &self.config.disabled_when) => {
                self.to_user(entry, username).await.map(Some)
            }
            _ => Ok(None),
        }
    }

    async fn group_members(&self, group: &str) -> Result<Vec<DirectoryUser>, DirectoryError> {
        Ok(self.members_of(group).await?.members)
    }

    async fn group_roster(&self, group: &str) -> Result<GroupRoster, DirectoryError> {
        self.members_of(group).await
    }

    async fn lookup_any(&self, username: &str) -> Result<Option<(DirectoryUser, bool)>, DirectoryError> {
        match self.find(username).await? {
            Some(entry) => {
                let enabled = !is_disabled(&entry, &self.config.disabled_when);
                self.to_user(entry, username)
                    .await
                    .map(|person| Some((person, enabled)))
            }
            None => Ok(None),
        }
    }
}

impl LdapDirectory {
    async fn to_user(&self, entry: Entry, typed: &str) -> Result<DirectoryUser, DirectoryError> {
        let id = stable_id(&entry, &self.config.id_attribute)
            .ok_or_else(|| unavailable(format!("the entry has no {} attribute", self.config.id_attribute)))?;
        let groups = self.groups(&entry).await?;
        Ok(self.person(&entry, id, self.username_of(&entry, typed), groups))
    }

    /// The person an entry describes; the display name falls back to the username.
    fn person(&self, entry: &Entry, stable_id: String, username: String, groups: Vec<String>) -> DirectoryUser {
        DirectoryUser {
            stable_id,
            display_name: entry
                .first(&self.config.display_name_attribute)
                .unwrap_or(&username)
                .to_owned(),
            username,
            groups,
            email: entry
                .first(&self.config.mail_attribute)
                .map(str::trim)
                .filter(|mail| !mail.is_empty())
                .map(str::to_owned),
        }
    }
}

/// A search result entry (not a referral) as an [`Entry`].
fn to_entry(raw: ResultEntry) -> Entry {
    let e = SearchEntry::construct(raw);
    Entry {
        dn: e.dn,
        attrs: e.attrs,
        bin_attrs: e.bin_attrs,
    }
}

fn unavailable(detail: impl Into<String>) -> DirectoryError {
    DirectoryError::Unavailable(detail.into())
}

/// TLS for LDAP: the configured CA only; TLS 1.2 and 1.3, since many directories lack 1.3.
fn tls_config(ca_file: &std::path::Path) -> Result<rustls::ClientConfig, String> {
    let certs = rampart_certs::load_certs(ca_file).map_err(|e| format!("directory.ca_file: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| format!("directory.ca_file {}: {e}", ca_file.display()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
