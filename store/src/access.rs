//! Operator API keys as every Rampart service checks them: the stored form of a key (its
//! SHA-256; keys are 256-bit random, so a fast hash is enough) and what each role may do.

use crate::OperatorRole;
use ring::digest::{SHA256, digest};

/// The hash the store keeps for `key` (surrounding whitespace ignored).
pub fn key_hash(key: &str) -> Vec<u8> {
    digest(&SHA256, key.trim().as_bytes()).as_ref().to_vec()
}

/// What an API route needs.
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
    fn hash_ignores_surrounding_whitespace() {
        assert_eq!(key_hash("rk_abc"), key_hash(" rk_abc\n"));
        assert_ne!(key_hash("rk_abc"), key_hash("rk_abd"));
        assert_eq!(key_hash("rk_abc").len(), 32);
    }

    #[test]
    fn roles() {
        use OperatorRole::*;
        assert!(allows(Auditor, Permission::Read));
        assert!(!allows(Auditor, Permission::ManageTokens));
        assert!(allows(Helpdesk, Permission::ManageTokens));
        assert!(!allows(Helpdesk, Permission::Administer));
        assert!(allows(Admin, Permission::Administer));
    }
}
