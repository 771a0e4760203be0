//! Operator roles and what each may do: one table for every service and page that checks an
//! operator (the provisioner's API and console, the gateway's admin API).

use std::fmt;

/// What an operator's API key, or a person signed in to the console, may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OperatorRole {
    /// Everything, including operators and keys.
    Admin,
    /// Tokens and VMs: issue, revoke, unlock, resync, enrol, allocate.
    Helpdesk,
    /// Read-only: reports, token lists and history, audit.
    Auditor,
}

impl OperatorRole {
    /// Every role.
    pub const ALL: [OperatorRole; 3] = [Self::Admin, Self::Helpdesk, Self::Auditor];

    /// Stored name: `admin`, `helpdesk`, `auditor`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Helpdesk => "helpdesk",
            Self::Auditor => "auditor",
        }
    }

    /// Parses a stored name (exact, lowercase).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == name)
    }
}

impl fmt::Display for OperatorRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an API route or console page needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read tokens, people, reports, history, sessions and policy explanations.
    Read,
    /// Issue, revoke, unlock, resync tokens; enrol people; end sessions; allocate, release and
    /// reassign VMs, put them in maintenance and reclaim idle ones.
    ManageTokens,
    /// Operators, seed-sealing keys, VM pools and their inventory (adding and retiring VMs: an
    /// address there is where `allocated:` resources lead).
    Administer,
}

/// The roles that grant `permission`, in words for a refusal.
pub fn granted_by(permission: Permission) -> &'static str {
    match permission {
        Permission::Read => "any role",
        Permission::ManageTokens => "the helpdesk or admin role",
        Permission::Administer => "the admin role",
    }
}

/// Whether `role` grants `permission`.
pub fn allows(role: OperatorRole, permission: Permission) -> bool {
    match permission {
        Permission::Read => true,
        Permission::ManageTokens => matches!(role, OperatorRole::Admin | OperatorRole::Helpdesk),
        Permission::Administer => role == OperatorRole::Admin,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_grants_what_the_table_says() {
        use OperatorRole::*;
        assert!(allows(Auditor, Permission::Read));
        assert!(!allows(Auditor, Permission::ManageTokens));
        assert!(allows(Helpdesk, Permission::ManageTokens));
        assert!(!allows(Helpdesk, Permission::Administer));
        assert!(allows(Admin, Permission::Administer));
        for role in OperatorRole::ALL {
            assert_eq!(OperatorRole::parse(role.as_str()), Some(role));
        }
    }
}
