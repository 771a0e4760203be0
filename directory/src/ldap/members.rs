//! The people in a group, for enrolling a whole group: find the group entries by name, then
//! their members — the listed `member`/`uniqueMember` DNs read one by one (`group_search`), or
//! one paged search on `memberOf` (`member_of`, `ad_nested`) — then each member's groups the way
//! a login reads them. Reads run a few at a time on the service pool; searches that can return
//! many entries use the simple paged results control (RFC 2696), so a server's size limit
//! cannot silently shorten the list. Everyone a group lists who cannot be enrolled (disabled,
//! not a person, outside `user_base`, a dangling DN, no username or stable id, a shared
//! username) is returned beside the people, with why.

use super::entry::{
    Entry, any_user_filter, dn_key, dn_within, group_by_name_filter, is_disabled, member_dn, member_filter, stable_id,
};
use super::{GroupMode, LdapDirectory, SIZE_LIMIT_EXCEEDED, to_entry, unavailable};
use crate::{DirectoryError, DirectoryUser, GroupRoster, LeftOut, LeftOutReason};
use futures::stream::{self, StreamExt, TryStreamExt};
use ldap3::Scope;
use ldap3::adapters::PagedResults;
use rampart_core::username::normalize_username;
use std::collections::HashSet;

/// Entries per page of a paged search: below OpenLDAP's default size limit (500) and Active
/// Directory's MaxPageSize (1000).
const PAGE_SIZE: i32 = 200;
/// Most member reads in flight at once, each holding one service connection briefly (the pool
/// hands connections out in turn, so logins still get theirs).
const MAX_CONCURRENT_READS: usize = 8;
/// LDAP result code when the base entry does not exist.
const NO_SUCH_OBJECT: u32 = 32;

impl LdapDirectory {
    /// The enabled people in the group(s) named `group`, with all their groups, by username,
    /// and everyone else the group lists, with why they are left out.
    pub(super) async fn members_of(&self, group: &str) -> Result<GroupRoster, DirectoryError> {
        let groups = if group.trim().is_empty() {
            Vec::new()
        } else {
            self.find_groups(group).await?
        };
        if groups.is_empty() {
            return Err(DirectoryError::UnknownGroup(group.to_owned()));
        }
        let (entries, mut left_out) = match self.config.group_mode {
            GroupMode::GroupSearch => self.read_listed_members(&groups).await?,
            mode => (
                self.search_members(&groups, mode == GroupMode::AdNested).await?,
                Vec::new(),
            ),
        };
        let people: Vec<Result<DirectoryUser, LeftOut>> = stream::iter(entries)
            .map(|entry| self.member(entry))
            .buffer_unordered(self.concurrency())
            .try_collect()
            .await?;
        let mut members = Vec::new();
        for person in people {
            match person {
                Ok(person) => members.push(person),
                Err(out) => left_out.push(out),
            }
        }
        let (members, shared) = unique_by_username(members);
        left_out.extend(shared);
        left_out.sort_by(|a, b| a.name.cmp(&b.name));
        left_out.dedup();
        Ok(GroupRoster { members, left_out })
    }

    fn concurrency(&self) -> usize {
        self.config.pool_size.clamp(1, MAX_CONCURRENT_READS)
    }

    /// The group entries under `group_base` whose name (as people's group lists report it) is
    /// `name`, ignoring case. Several entries there may share a name (in different branches):
    /// people in any of them report it, so all count. Groups outside `group_base` never count,
    /// as at login.
    async fn find_groups(&self, name: &str) -> Result<Vec<Entry>, DirectoryError> {
        let mode = self.config.group_mode;
        let Some(base) = self.config.group_base.clone() else {
            return Ok(Vec::new());
        };
        let filter = group_by_name_filter(
            name.trim(),
            &self.config.group_name_attribute,
            mode == GroupMode::GroupSearch,
        );
        let mut attrs = vec![self.config.group_name_attribute.clone()];
        if mode == GroupMode::GroupSearch {
            attrs.extend(["member".to_owned(), "uniqueMember".to_owned()]);
        }
        let wanted = name.trim().to_lowercase();
        Ok(self
            .search_paged(&base, &filter, attrs, "group search")
            .await?
            .into_iter()
            .filter(|g| self.group_name(g).is_some_and(|n| n.trim().to_lowercase() == wanted))
            .collect())
    }

    /// `group_search`: reads the people the groups list; DNs outside `user_base` (they cannot
    /// log in), entries the user filter does not match (nested groups, non-people) and
    /// dangling DNs are left out, each named.
    async fn read_listed_members(&self, groups: &[Entry]) -> Result<(Vec<Entry>, Vec<LeftOut>), DirectoryError> {
        let mut seen = HashSet::new();
        let mut left_out = Vec::new();
        let mut dns = Vec::new();
        for dn in groups
            .iter()
            .flat_map(|g| g.values("member").iter().chain(g.values("uniqueMember")))
            .map(|value| member_dn(value).to_owned())
        {
            if !seen.insert(dn_key(&dn)) {
                continue;
            }
            if dn_within(&dn, &self.config.user_base) {
                dns.push(dn);
            } else if !dn.trim().is_empty() {
                left_out.push(LeftOut {
                    name: dn,
                    reason: LeftOutReason::OutsideUserBase,
                });
            }
        }
        let read: Vec<Result<Entry, LeftOut>> = stream::iter(dns)
            .map(|dn| async move {
                self.read_person(&dn).await.map(|read| match read {
                    Listed::Person(entry) => Ok(entry),
                    Listed::NotAPerson => Err(LeftOut {
                        name: dn,
                        reason: LeftOutReason::NotAPerson,
                    }),
                    Listed::Missing => Err(LeftOut {
                        name: dn,
                        reason: LeftOutReason::NoSuchEntry,
                    }),
                })
            })
            .buffer_unordered(self.concurrency())
            .try_collect()
            .await?;
        let mut entries = Vec::new();
        for one in read {
            match one {
                Ok(entry) => entries.push(entry),
                Err(out) => left_out.push(out),
            }
        }
        Ok((entries, left_out))
    }

    /// One listed entry by DN: a person when the user filter matches it.
    async fn read_person(&self, dn: &str) -> Result<Listed, DirectoryError> {
        let filter = any_user_filter(&self.config.user_filter);
        let mut lease = self.service.get().await.map_err(unavailable)?;
        let result = lease
            .ldap()
            .map_err(unavailable)?
            .search(dn, Scope::Base, &filter, self.user_attributes())
            .await
            .map_err(|e| unavailable(format!("member read failed: {e}")))?;
        let (entries, outcome) = (result.0, result.1);
        match outcome.rc {
            0 => {
                lease.keep();
                Ok(entries
                    .into_iter()
                    .find(|raw| !raw.is_ref() && !raw.is_intermediate())
                    .map_or(Listed::NotAPerson, |raw| Listed::Person(to_entry(raw))))
            }
            NO_SUCH_OBJECT => {
                lease.keep();
                Ok(Listed::Missing)
            }
            rc => Err(unavailable(format!("member read failed (LDAP result {rc})"))),
        }
    }

    /// `member_of` and `ad_nested`: one paged search under `user_base` per group entry.
    async fn search_members(&self, groups: &[Entry], nested: bool) -> Result<Vec<Entry>, DirectoryError> {
        let any_user = any_user_filter(&self.config.user_filter);
        let mut seen = HashSet::new();
        let mut members = Vec::new();
        for group in groups {
            let filter = member_filter(&any_user, &group.dn, nested);
            let found = self
                .search_paged(&self.config.user_base, &filter, self.user_attributes(), "member search")
                .await?;
            members.extend(found.into_iter().filter(|e| seen.insert(dn_key(&e.dn))));
        }
        Ok(members)
    }

    /// A subtree search fetched page by page; referrals are skipped. A size limit that still
    /// stops it is an error, never a shortened answer.
    async fn search_paged(
        &self,
        base: &str,
        filter: &str,
        attrs: Vec<String>,
        what: &str,
    ) -> Result<Vec<Entry>, DirectoryError> {
        let mut lease = self.service.get().await.map_err(unavailable)?;
        let mut stream = lease
            .ldap()
            .map_err(unavailable)?
            .streaming_search_with(
                PagedResults::<String, Vec<String>>::new(PAGE_SIZE),
                base,
                Scope::Subtree,
                filter,
                attrs,
            )
            .await
            .map_err(|e| unavailable(format!("{what} failed: {e}")))?;
        let mut entries = Vec::new();
        while let Some(raw) = stream
            .next()
            .await
            .map_err(|e| unavailable(format!("{what} failed: {e}")))?
        {
            if !raw.is_ref() && !raw.is_intermediate() {
                entries.push(to_entry(raw));
            }
        }
        let outcome = stream.finish().await;
        match outcome.rc {
            0 => {
                lease.keep();
                Ok(entries)
            }
            SIZE_LIMIT_EXCEEDED => {
                lease.keep();
                Err(unavailable(format!(
                    "{what} under {base} stopped at the directory's size limit after {} entries, even with paged \
                     results; let the service account page past it (OpenLDAP: `limits dn.exact=\"<bind_dn>\" \
                     size.prtotal=unlimited`)",
                    entries.len()
                )))
            }
            rc => Err(unavailable(format!("{what} under {base} failed (LDAP result {rc})"))),
        }
    }

    /// The person a member entry describes, or why it is left out: disabled, or unusable (no
    /// username or stable id: such an entry cannot log in either).
    async fn member(&self, entry: Entry) -> Result<Result<DirectoryUser, LeftOut>, DirectoryError> {
        let username = entry
            .first(&self.config.username_attribute)
            .and_then(|u| normalize_username(u).ok());
        let left_out = |reason| {
            Ok(Err(LeftOut {
                name: username.clone().unwrap_or_else(|| entry.dn.clone()),
                reason,
            }))
        };
        if is_disabled(&entry, &self.config.disabled_when) {
            return left_out(LeftOutReason::Disabled);
        }
        let Some(username) = username.clone() else {
            tracing::warn!(target: "rampart::directory", dn = %entry.dn, attribute = %self.config.username_attribute,
                "group member has no usable username; left out");
            return left_out(LeftOutReason::NoUsername);
        };
        let Some(id) = stable_id(&entry, &self.config.id_attribute) else {
            tracing::warn!(target: "rampart::directory", dn = %entry.dn, attribute = %self.config.id_attribute,
                "group member has no stable id; left out");
            return left_out(LeftOutReason::NoStableId);
        };
        let groups = self.groups(&entry).await?;
        Ok(Ok(self.person(&entry, id, username, groups)))
    }
}

/// What a DN a group lists turned out to be.
enum Listed {
    /// A person: the user filter matches the entry.
    Person(Entry),
    /// The entry exists but the user filter does not match it.
    NotAPerson,
    /// No such entry.
    Missing,
}

/// Sorted by username. Entries sharing a username are left out (a login refuses them too),
/// and returned second.
fn unique_by_username(mut people: Vec<DirectoryUser>) -> (Vec<DirectoryUser>, Vec<LeftOut>) {
    people.sort_by(|a, b| a.username.cmp(&b.username).then_with(|| a.stable_id.cmp(&b.stable_id)));
    let mut unique = Vec::with_capacity(people.len());
    let mut shared = Vec::new();
    for same in people.chunk_by(|a, b| a.username == b.username) {
        match same {
            [one] => unique.push(one.clone()),
            several => {
                tracing::warn!(target: "rampart::directory", user = %several[0].username, entries = several.len(),
                    "several directory entries share a username; left out");
                shared.push(LeftOut {
                    name: several[0].username.clone(),
                    reason: LeftOutReason::SharedUsername,
                });
            }
        }
    }
    (unique, shared)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(username: &str, id: &str) -> DirectoryUser {
        DirectoryUser {
            stable_id: id.into(),
            username: username.into(),
            display_name: username.into(),
            groups: vec!["staff".into()],
            email: None,
        }
    }

    #[test]
    fn members_are_sorted_and_ambiguous_usernames_left_out() {
        let people = vec![
            person("carol", "3"),
            person("alice", "1"),
            person("bob", "2"),
            person("carol", "4"),
        ];
        let (unique, shared) = unique_by_username(people);
        let names: Vec<_> = unique.into_iter().map(|p| p.username).collect();
        assert_eq!(names, ["alice", "bob"]);
        assert_eq!(
            shared,
            [LeftOut {
                name: "carol".into(),
                reason: LeftOutReason::SharedUsername
            }]
        );
    }
}
