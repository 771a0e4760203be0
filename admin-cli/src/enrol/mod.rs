//! `rampart enrol`: bulk enrolment from a CSV file or a directory group. `rows` reads the CSV;
//! `output` keeps the crash-safe, resumable output folder of QR images and manifests;
//! `command` drives the run against the provisioner.

mod command;
pub(crate) mod output;
pub(crate) mod rows;

pub use command::{EnrolArgs, run};
