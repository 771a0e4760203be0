//! The catalogue of copied tables: each table's columns, their kinds, and how its rows reach
//! PostgreSQL; and the check of a database's columns against it.

use std::collections::BTreeSet;

use crate::StoreError;

/// How a column's values are read from SQLite and written to PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// SQLite INTEGER, PostgreSQL BIGINT.
    Int,
    /// SQLite 0 or 1, PostgreSQL BOOLEAN.
    Bool,
    /// TEXT on both.
    Text,
    /// SQLite BLOB, PostgreSQL BYTEA.
    Blob,
}

/// How a table's rows reach PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Write {
    /// Inserted.
    Insert,
    /// The one row the migration created, updated in place (`session_end_feed`).
    UpdateSingleRow,
}

/// One copied table: its columns (the same names in both databases) and how it is copied.
#[derive(Debug)]
pub(super) struct Table {
    pub(super) name: &'static str,
    /// Every column of the table in both databases, in copy order.
    pub(super) columns: &'static [(&'static str, Kind)],
    /// SQLite's hidden `rowid` is copied into this PostgreSQL column (an identity column
    /// `GENERATED ALWAYS`, so inserts say `OVERRIDING SYSTEM VALUE`).
    pub(super) rowid_into: Option<&'static str>,
    /// The PostgreSQL identity column whose sequence must move past the copied values.
    pub(super) identity: Option<&'static str>,
    pub(super) write: Write,
}

pub(super) use Kind::{Blob, Bool, Int, Text};

/// Every table of the schema this build was made for, parents before children (foreign keys:
/// `user_groups`, `tokens`, `temp_codes`, `registration_codes`, `enrolments`, `reset_requests`,
/// `rehearsals` and `vms.holder_id` name `users`; `enrolments.registration_code` names `registration_codes`; `vms.pool`
/// names `vm_pools`). The column lists are those of `migrations/sqlite` and `migrations/postgres`
/// (a migration that adds a table or a column must add it here); the copy checks them against
/// both databases before it writes anything, so a list that falls behind stops the copy
/// instead of leaving data behind.
pub(super) const TABLES: &[Table] = &[
    Table {
        name: "users",
        columns: &[
            ("id", Text),
            ("username", Text),
            ("display_name", Text),
            ("password_hash", Text),
            ("enabled", Bool),
            ("created_at", Int),
        ],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
    Table {
        name: "user_groups",
        columns: &[("user_id", Text), ("group_name", Text)],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
    Table {
        name: "tokens",
        columns: &[
            ("id", Text),
            ("user_id", Text),
            ("state", Text),
            ("algorithm", Text),
            ("digits", Int),
            ("period", Int),
            ("time_window", Int),
            ("key_id", Int),
            ("sealed_seed", Blob),
            ("last_step", Int),
            ("activated_step", Int),
            ("failures", Int),
            ("created_at", Int),
            ("activated_at", Int),
            ("last_used_at", Int),
            ("updated_at", Int),
            ("delivered_at", Int),
            ("issued_by", Text),
            ("drift_steps", Int),
        ],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
    Table {
        name: "operators",
        columns: &[
            ("id", Text),
            ("name", Text),
            ("role", Text),
            ("key_hash", Blob),
            ("created_at", Int),
            ("created_by", Text),
            ("revoked_at", Int),
        ],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
    Table {
        name: "token_events",
        columns: &[
            ("seq", Int),
            ("at", Int),
            ("actor", Text),
            ("action", Text),
            ("user_id", Text),
            ("token_id", Text),
            ("detail", Text),
        ],
        rowid_into: None,
        identity: Some("seq"),
        write: Write::Insert,
    },
    Table {
        name: "temp_codes",
        columns: &[
            ("id", Text),
            ("user_id", Text),
            ("code_hash", Blob),
            ("created_at", Int),
            ("expires_at", Int),
            ("used_at", Int),
            ("created_by", Text),
            ("failures", Int),
        ],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
    Table {
        name: "registration_codes",
        columns: &[
            ("id", Text),
            ("user_id", Text),
            ("code_hash", Blob),
            ("created_at", Int),
            ("expires_at", Int),
            ("created_by", Text),
            ("delivery", Text),
            ("failures", Int),
            ("used_at", Int),
            ("withdrawn_at", Int),
        ],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
    Table {
        name: "enrolments",
        columns: &[
            ("id", Text),
            ("user_id", Text),
            ("registration_code", Text),
            ("token_id", Text),
            ("algorithm", Text),
            ("digits", Int),
            ("period", Int),
            ("time_window", Int),
            ("key_id", Int),
            ("sealed_seed", Blob),
            ("created_at", Int),
            ("expires_at", Int),
            ("failures", Int),
        ],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
    Table {
        name: "reset_requests",
        columns: &[
            ("id", Text),
            ("user_id", Text),
            ("action", Text),
            ("token_id", Text),
            ("reason", Text),
            ("requested_by", Text),
            ("created_at", Int),
            ("expires_at", Int),
            ("status", Text),
            ("decided_by", Text),
            ("decided_at", Int),
            ("decision_reason", Text),
            ("completed_at", Int),
        ],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
    Table {
        name: "sessions",
        columns: &[
            ("id", Text),
            ("ticket_hash", Blob),
            ("user_id", Text),
            ("username", Text),
            ("group_names", Text),
            ("source", Text),
            ("created_at", Int),
            ("expires_at", Int),
            ("ended_at", Int),
            ("end_reason", Text),
            ("token_id", Text),
            ("last_seen_at", Int),
            ("end_seq", Int),
            ("gateway_id", Text),
            ("client_key", Blob),
            ("ended_by", Text),
        ],
        rowid_into: Some("rowid"),
        identity: Some("rowid"),
        write: Write::Insert,
    },
    Table {
        name: "replaced_tickets",
        columns: &[("hash", Blob), ("session_id", Text), ("replaced_at", Int)],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
    Table {
        name: "session_end_feed",
        columns: &[("id", Int), ("last_seq", Int)],
        rowid_into: None,
        identity: None,
        write: Write::UpdateSingleRow,
    },
    Table {
        name: "vm_pools",
        columns: &[
            ("name", Text),
            ("description", Text),
            ("ports", Text),
            ("capacity", Int),
            ("provision_hook", Text),
            ("reset_hook", Text),
            ("destroy_hook", Text),
            ("hook_timeout_secs", Int),
            ("created_at", Int),
            ("created_by", Text),
        ],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
    Table {
        name: "vms",
        columns: &[
            ("id", Text),
            ("pool", Text),
            ("address", Text),
            ("state", Text),
            ("holder_id", Text),
            ("holder_name", Text),
            ("allocated_at", Int),
            ("last_flow_at", Int),
            ("error", Text),
            ("hook_output", Text),
            ("created_at", Int),
            ("updated_at", Int),
        ],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
    Table {
        name: "vm_events",
        columns: &[
            ("seq", Int),
            ("at", Int),
            ("vm_id", Text),
            ("pool", Text),
            ("actor", Text),
            ("action", Text),
            ("user_name", Text),
            ("detail", Text),
        ],
        rowid_into: None,
        identity: Some("seq"),
        write: Write::Insert,
    },
    Table {
        name: "seal_keys",
        columns: &[
            ("id", Int),
            ("wrapped", Blob),
            ("kek_id", Text),
            ("created_at", Int),
            ("created_by", Text),
        ],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
    Table {
        name: "gateway_nodes",
        columns: &[
            ("id", Text),
            ("address", Text),
            ("admin_url", Text),
            ("version", Text),
            ("started_at", Int),
            ("last_seen_at", Int),
            ("sessions", Int),
            ("flows", Int),
            ("stopped_at", Int),
        ],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
    Table {
        name: "audit_streams",
        columns: &[
            ("key_id", Text),
            ("stream", Text),
            ("service", Text),
            ("first_seen_at", Int),
            ("last_opened_at", Int),
        ],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
    Table {
        name: "audit_anchors",
        columns: &[
            ("key_id", Text),
            ("stream", Text),
            ("seq", Int),
            ("hash", Text),
            ("file", Text),
            ("recorded_at", Int),
        ],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
    Table {
        name: "rehearsals",
        columns: &[
            ("id", Text),
            ("user_id", Text),
            ("session_id", Text),
            ("at", Int),
            ("passed", Bool),
            ("resources", Int),
            ("failed", Int),
            ("detail", Text),
            ("source", Text),
            ("seq", Int),
        ],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
];

/// Tables of the schema the copy leaves behind on purpose. `web_sessions`: web console
/// sign-ins are ephemeral (minutes to hours), and a copy happens with the services stopped, so
/// people simply sign in again on the new database rather than carry cookies across.
pub(super) const NOT_COPIED: &[&str] = &["web_sessions"];

/// Fails unless `found` (a table's columns in `place`) are exactly the catalogue's columns of `table`
/// (with `with_rowid`, plus the column SQLite's `rowid` goes into).
pub(super) fn same_columns(place: &str, table: &Table, found: Vec<String>, with_rowid: bool) -> Result<(), StoreError> {
    let found: BTreeSet<String> = found.into_iter().collect();
    let mut known: BTreeSet<String> = table.columns.iter().map(|(name, _)| (*name).to_owned()).collect();
    if with_rowid && let Some(column) = table.rowid_into {
        known.insert(column.to_owned());
    }
    if found == known {
        return Ok(());
    }
    let missing: Vec<&String> = known.difference(&found).collect();
    let unknown: Vec<&String> = found.difference(&known).collect();
    Err(StoreError::Schema(format!(
        "{place}: table {} has columns this build does not expect (missing {missing:?}, unknown {unknown:?}); \
         nothing was copied",
        table.name
    )))
}
