//! The OCSF classes, activities, outcomes and dispositions an audit event is filed under.

/// The OCSF classes Rampart writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Logins, resumes, logouts and session ends.
    Authentication,
    /// Per-stream access decisions.
    Authorization,
    /// Forwarded connections: open, close, failure.
    NetworkActivity,
    /// Token (and later VM) changes.
    AccountChange,
    /// Operator calls to the admin and provisioner APIs.
    ApiActivity,
    /// The audit trail about itself: records it had to drop.
    EventLogActivity,
}

impl Class {
    /// OCSF `class_uid`.
    pub fn uid(self) -> u32 {
        match self {
            Self::Authentication => 3002,
            Self::Authorization => 3003,
            Self::NetworkActivity => 4001,
            Self::AccountChange => 3001,
            Self::ApiActivity => 6003,
            Self::EventLogActivity => 1008,
        }
    }

    /// OCSF `class_name`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Authentication => "Authentication",
            Self::Authorization => "Authorize Session",
            Self::NetworkActivity => "Network Activity",
            Self::AccountChange => "Account Change",
            Self::ApiActivity => "API Activity",
            Self::EventLogActivity => "Event Log Activity",
        }
    }

    pub(super) fn category(self) -> (u32, &'static str) {
        match self {
            Self::Authentication | Self::Authorization | Self::AccountChange => (3, "Identity & Access Management"),
            Self::NetworkActivity => (4, "Network Activity"),
            Self::ApiActivity => (6, "Application Activity"),
            Self::EventLogActivity => (1, "System Activity"),
        }
    }

    /// The short name `rampart audit query --class` takes.
    pub fn short_name(self) -> &'static str {
        match self {
            Self::Authentication => "auth",
            Self::Authorization => "decision",
            Self::NetworkActivity => "flow",
            Self::AccountChange => "account",
            Self::ApiActivity => "api",
            Self::EventLogActivity => "log",
        }
    }

    /// Every class, for parsing short names.
    pub const ALL: [Self; 6] = [
        Self::Authentication,
        Self::Authorization,
        Self::NetworkActivity,
        Self::AccountChange,
        Self::ApiActivity,
        Self::EventLogActivity,
    ];
}

/// An OCSF activity: its id within the class and its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activity {
    /// `activity_id`.
    pub id: u32,
    /// `activity_name`.
    pub name: &'static str,
}

impl Activity {
    /// Authentication: a login with password and code.
    pub const LOGON: Self = Self { id: 1, name: "Logon" };
    /// Authentication: a session ended (logout, kill, expiry, revocation…).
    pub const LOGOFF: Self = Self { id: 2, name: "Logoff" };
    /// Authentication: a session resumed with its ticket.
    pub const RESUME: Self = Self {
        id: 3,
        name: "Authentication Ticket",
    };
    /// Authorization: a stream's access decision.
    pub const DECIDE: Self = Self {
        id: 99,
        name: "Access Decision",
    };
    /// Network Activity: a forwarded connection opened.
    pub const OPEN: Self = Self { id: 1, name: "Open" };
    /// Network Activity: a forwarded connection closed.
    pub const CLOSE: Self = Self { id: 2, name: "Close" };
    /// Network Activity: the target could not be reached.
    pub const FAIL: Self = Self { id: 4, name: "Fail" };
    /// Account Change: a token issued.
    pub const MFA_ENABLE: Self = Self {
        id: 10,
        name: "MFA Factor Enable",
    };
    /// Account Change: a token revoked, lost or replaced.
    pub const MFA_DISABLE: Self = Self {
        id: 11,
        name: "MFA Factor Disable",
    };
    /// Account Change: a token locked after wrong codes.
    pub const LOCK: Self = Self { id: 9, name: "Lock" };
    /// Account Change: a VM removed for good.
    pub const REMOVE: Self = Self { id: 6, name: "Delete" };
    /// Account Change: a VM given to a person.
    pub const ATTACH: Self = Self {
        id: 7,
        name: "Attach Policy",
    };
    /// Account Change: a VM taken back.
    pub const DETACH: Self = Self {
        id: 8,
        name: "Detach Policy",
    };
    /// Account Change and API Activity: anything else (unlock, resync, activation…).
    pub const OTHER: Self = Self { id: 99, name: "Other" };
    /// API Activity: a call that created something.
    pub const CREATE: Self = Self { id: 1, name: "Create" };
    /// API Activity: a call that only read.
    pub const READ: Self = Self { id: 2, name: "Read" };
    /// API Activity: a call that changed something.
    pub const UPDATE: Self = Self { id: 3, name: "Update" };
    /// API Activity: a call that removed or ended something.
    pub const DELETE: Self = Self { id: 4, name: "Delete" };
    /// Event Log Activity: the writer dropped records (OCSF `Other`, named by `activity_name`).
    pub const RECORDS_DROPPED: Self = Self {
        id: 99,
        name: "Records Dropped",
    };
    /// Event Log Activity: a restarted writer found its files behind or unlike the head the
    /// store anchored (OCSF `Other`, named by `activity_name`).
    pub const CHAIN_GAP: Self = Self {
        id: 99,
        name: "Chain Gap",
    };
}

/// Whether the activity succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// It did what was asked.
    Success,
    /// It was refused or failed.
    Failure,
}

/// Whether access was granted (OCSF `disposition_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Allowed.
    Allowed,
    /// Blocked.
    Blocked,
}

impl Disposition {
    /// OCSF `disposition_id`.
    pub fn id(self) -> u8 {
        match self {
            Self::Allowed => 1,
            Self::Blocked => 2,
        }
    }

    /// OCSF `disposition`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Allowed => "Allowed",
            Self::Blocked => "Blocked",
        }
    }
}
