//! The audit trail's sans-I/O parts: OCSF-shaped events, the SHA-256 hash chain that seals
//! each line, Ed25519-signed checkpoints, and the verifier that names the first broken record.
//! Files, rotation and the writer task live in `rampart-audit`.

pub mod chain;
pub mod checkpoint;
pub mod event;
pub mod verify;

pub use chain::{GENESIS, LineError, Link, SealedLine, check_line, seal};
pub use checkpoint::{Checkpoint, CheckpointRecord};
pub use event::{
    Activity, Actor, AuditEvent, ChainGap, Class, Disposition, Endpoint, GapKind, Metadata, RecordLoss, Status,
    Traffic, Unmapped, User,
};
pub use verify::{Anchor, Finding, Place, Problem, StreamVerifier, Summary};
