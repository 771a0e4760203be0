//! Access policy: named resources, who may open them, and the pure decision function.
//!
//! Default deny: a person may open a resource only if a rule names them or one of their groups.
//! Decisions depend only on (identity, resource name, policy), so they are tested with tables.

use crate::protocol::ResourceInfo;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// Largest policy file accepted, in bytes.
pub const MAX_POLICY_LEN: usize = 1024 * 1024;

/// A validated policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    resources: BTreeMap<String, Resource>,
}

/// One resource the gateway can connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Unique name clients use.
    pub name: String,
    /// Where the gateway connects.
    pub target: Target,
    /// What it is, in words.
    pub description: String,
    /// Normalised usernames allowed.
    pub allow_users: Vec<String>,
    /// Directory groups allowed (compared case-insensitively).
    pub allow_groups: Vec<String>,
}

/// A `host:port` target in canonical form: lower-case host without trailing dot, IPv4-mapped
/// IPv6 addresses as IPv4, so equivalent spellings compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// Host name or IP address literal (without brackets).
    pub host: String,
    /// TCP port, never 0.
    pub port: u16,
}

/// Who is asking: the session's normalised username and directory groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Normalised username.
    pub username: String,
    /// Directory group names.
    pub groups: Vec<String>,
}

/// The outcome of a policy decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Connect to this target.
    Allow {
        /// Where to connect.
        target: Target,
        /// Which rule allowed it, for the log.
        rule: AllowRule,
    },
    /// Refuse.
    Deny(DenyReason),
}

/// Which part of a resource's rule allowed access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowRule {
    /// The username is listed.
    User,
    /// This group is listed.
    Group(String),
}

/// Why access was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// No resource has that name.
    UnknownResource,
    /// The resource exists; neither the user nor any of their groups is allowed.
    NotAllowed,
}

/// One problem found in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyProblem {
    /// Where: `resource[2] "intranet".target`, or `file` for syntax errors.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for PolicyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Every problem found in a policy file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} problem(s) in policy: {}", .0.len(), join(.0))]
pub struct PolicyErrors(pub Vec<PolicyProblem>);

fn join(problems: &[PolicyProblem]) -> String {
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    resource: Vec<ResourceEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceEntry {
    name: String,
    target: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    allow_users: Vec<String>,
    #[serde(default)]
    allow_groups: Vec<String>,
}

impl Policy {
    /// Parses and validates a policy file, reporting every problem at once.
    pub fn parse(text: &str) -> Result<Self, PolicyErrors> {
        let problem = |location: String, message: String| PolicyProblem { location, message };
        if text.len() > MAX_POLICY_LEN {
            return Err(PolicyErrors(vec![problem(
                "file".into(),
                format!("larger than {MAX_POLICY_LEN} bytes"),
            )]));
        }
        let file: PolicyFile =
            toml::from_str(text).map_err(|e| PolicyErrors(vec![problem("file".into(), e.message().to_owned())]))?;
        let mut problems = Vec::new();
        let mut resources = BTreeMap::new();
        let mut seen = std::collections::HashSet::new();
        for (index, entry) in file.resource.into_iter().enumerate() {
            let at = format!("resource[{index}] {:?}", entry.name);
            if let Err(message) = check_name(&entry.name) {
                problems.push(problem(format!("{at}.name"), message));
            }
            let target = Target::parse(&entry.target)
                .map_err(|message| problems.push(problem(format!("{at}.target"), message)))
                .ok();
            let mut allow_users = Vec::new();
            for user in &entry.allow_users {
                match crate::username::normalize_username(user) {
                    Ok(name) => allow_users.push(name),
                    Err(e) => problems.push(problem(format!("{at}.allow_users"), format!("{user:?}: {e}"))),
                }
            }
            if entry.allow_groups.iter().any(|g| g.trim().is_empty()) {
                problems.push(problem(format!("{at}.allow_groups"), "empty group name".into()));
            }
            if !seen.insert(entry.name.clone()) {
                problems.push(problem(format!("{at}.name"), "duplicate resource name".into()));
                continue;
            }
            if let Some(target) = target {
                let resource = Resource {
                    name: entry.name.clone(),
                    target,
                    description: entry.description,
                    allow_users,
                    allow_groups: entry.allow_groups.iter().map(|g| g.trim().to_owned()).collect(),
                };
                resources.insert(entry.name, resource);
            }
        }
        if problems.is_empty() {
            Ok(Self { resources })
        } else {
            Err(PolicyErrors(problems))
        }
    }

    /// Builds a policy from resources already validated by the caller (e.g. `rampart dev`).
    pub fn from_resources(resources: impl IntoIterator<Item = Resource>) -> Self {
        Self {
            resources: resources.into_iter().map(|r| (r.name.clone(), r)).collect(),
        }
    }

    /// Decides whether `who` may open `resource`.
    pub fn decide(&self, who: &Identity, resource: &str) -> Decision {
        let Some(found) = self.resources.get(resource) else {
            return Decision::Deny(DenyReason::UnknownResource);
        };
        match found.allows(who) {
            Some(rule) => Decision::Allow {
                target: found.target.clone(),
                rule,
            },
            None => Decision::Deny(DenyReason::NotAllowed),
        }
    }

    /// The resources `who` may open, by name.
    pub fn visible_to(&self, who: &Identity) -> Vec<ResourceInfo> {
        self.resources
            .values()
            .filter(|r| r.allows(who).is_some())
            .map(|r| ResourceInfo {
                name: r.name.clone(),
                description: r.description.clone(),
            })
            .collect()
    }

    /// All resources, by name.
    pub fn resources(&self) -> impl Iterator<Item = &Resource> {
        self.resources.values()
    }
}

impl Resource {
    fn allows(&self, who: &Identity) -> Option<AllowRule> {
        if self.allow_users.contains(&who.username) {
            return Some(AllowRule::User);
        }
        self.allow_groups
            .iter()
            .find(|allowed| who.groups.iter().any(|g| g.trim().eq_ignore_ascii_case(allowed)))
            .map(|g| AllowRule::Group(g.clone()))
    }
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("must be 1 to 64 characters".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err("may contain only letters, digits, '-', '_' and '.'".into());
    }
    Ok(())
}

impl Target {
    /// Parses `host:port` or `[v6]:port` into canonical form.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, port) = rest.split_once("]:").ok_or("IPv6 targets are written [address]:port")?;
            (host, port)
        } else {
            text.rsplit_once(':').ok_or("expected host:port")?
        };
        let port: u16 = port.parse().map_err(|_| format!("invalid port {port:?}"))?;
        if port == 0 {
            return Err("port 0 is not a valid target".into());
        }
        Ok(Self {
            host: canonical_host(host)?,
            port,
        })
    }

    /// The address to dial, with brackets around IPv6 literals.
    pub fn dial_string(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.dial_string())
    }
}

fn canonical_host(host: &str) -> Result<String, String> {
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or_else(|| v6.to_string(), |v4| v4.to_string()),
            IpAddr::V4(v4) => v4.to_string(),
        });
    }
    if host.parse::<Ipv6Addr>().is_err() && host.contains(':') {
        return Err(format!("invalid host {host:?}"));
    }
    let valid_label = |l: &str| {
        !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if host.is_empty() || host.len() > 253 || !host.split('.').all(valid_label) {
        return Err(format!("invalid host {host:?}"));
    }
    Ok(host)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const POLICY: &str = r#"
        [[resource]]
        name = "intranet"
        target = "intranet.bank.example:443"
        description = "Intranet"
        allow_groups = ["staff"]

        [[resource]]
        name = "payments"
        target = "10.0.0.5:8443"
        allow_groups = ["payments-ops"]
        allow_users = ["Carol"]

        [[resource]]
        name = "nobody"
        target = "10.0.0.6:22"
    "#;

    fn who(user: &str, groups: &[&str]) -> Identity {
        Identity {
            username: user.into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        }
    }

    #[test]
    fn exhaustive_users_by_resources() {
        let policy = Policy::parse(POLICY).unwrap();
        let users = [
            who("alice", &["staff"]),
            who("bob", &["payments-ops", "staff"]),
            who("carol", &[]),
            who("dave", &["STAFF"]),
            who("eve", &["staff-not"]),
        ];
        let resources = ["intranet", "payments", "nobody", "missing"];
        let expect = |u: &str, r: &str| match (u, r) {
            (_, "missing") => Some(DenyReason::UnknownResource),
            ("alice" | "bob" | "dave", "intranet") => None,
            ("bob" | "carol", "payments") => None,
            _ => Some(DenyReason::NotAllowed),
        };
        for u in &users {
            for r in resources {
                let got = match policy.decide(u, r) {
                    Decision::Allow { .. } => None,
                    Decision::Deny(reason) => Some(reason),
                };
                assert_eq!(got, expect(&u.username, r), "{} → {r}", u.username);
            }
        }
    }

    #[test]
    fn visible_resources_follow_decisions() {
        let policy = Policy::parse(POLICY).unwrap();
        let names: Vec<_> = policy
            .visible_to(&who("bob", &["payments-ops", "staff"]))
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["intranet", "payments"]);
        assert!(policy.visible_to(&who("zed", &[])).is_empty());
    }

    #[test]
    fn all_problems_are_reported_with_locations() {
        let bad = r#"
            [[resource]]
            name = "bad name"
            target = "nohost"
            [[resource]]
            name = "ok"
            target = "h:0"
            allow_users = ["x\u0000y"]
            [[resource]]
            name = "ok"
            target = "h:1"
        "#;
        let errors = Policy::parse(bad).unwrap_err().0;
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 5, "{text:#?}");
        assert!(text.iter().any(|t| t.starts_with("resource[0] \"bad name\".name")));
        assert!(text.iter().any(|t| t.starts_with("resource[0] \"bad name\".target")));
        assert!(text.iter().any(|t| t.starts_with("resource[1] \"ok\".target")));
        assert!(text.iter().any(|t| t.starts_with("resource[1] \"ok\".allow_users")));
        assert!(text.iter().any(|t| t.contains("duplicate")));
    }

    #[test]
    fn unknown_fields_and_syntax_errors() {
        assert!(Policy::parse("[[resource]]\nname='a'\ntarget='h:1'\nallowed_groups=['x']").is_err());
        assert!(Policy::parse("[[resource").is_err());
        assert!(Policy::parse("").unwrap().resources().next().is_none());
    }

    #[test]
    fn equivalent_target_spellings_are_equal() {
        let a = Target::parse("Intranet.Bank.Example.:443").unwrap();
        let b = Target::parse("intranet.bank.example:443").unwrap();
        assert_eq!(a, b);
        let mapped = Target::parse("[::ffff:10.0.0.5]:22").unwrap();
        assert_eq!(mapped, Target::parse("10.0.0.5:22").unwrap());
        assert_eq!(Target::parse("[::1]:80").unwrap().dial_string(), "[::1]:80");
        for bad in ["", "host", "host:", "host:70000", ":80", "a b:1", "[::1:80", "ho/st:1"] {
            assert!(Target::parse(bad).is_err(), "{bad:?}");
        }
    }
}
