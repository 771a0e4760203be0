//! The clock check: this gateway's clock compared with the database's, at start and every
//! `clock_check_secs`. While they differ by more than `max_clock_skew_ms` every login is
//! refused with "try later" before any code is checked (a clock that is off would accept codes
//! from the future and mark steps that have not come yet as used), and the log
//! (`rampart::clock`), `/readyz` and `/metrics` say so. The measurement, the state and its log
//! are `rampart_store::clock`, shared with the provisioner; this module wires them to the
//! gateway's clock, store and metrics.

use crate::config::GatewaySettings;
use crate::state::Shared;
use rampart_store::clock;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub(crate) use rampart_store::clock::ClockCheck;

/// What the gateway holds back while its clock is off.
const AFFECTED: &str = "logins";

/// The gateway's check, with the bound and period of `settings`.
pub(crate) fn new(settings: &GatewaySettings) -> ClockCheck {
    ClockCheck::new(settings.max_clock_skew_ms, settings.clock_check_secs, AFFECTED)
}

/// Compares the clocks once: keeps the reading, updates the metrics and logs a change.
pub(crate) async fn check(shared: &Shared) {
    let checker = &shared.clock_check;
    let now_ms = || shared.clock.now_ms();
    let Some(reading) = checker.measure(now_ms, || shared.store.database_time_ms()).await else {
        return;
    };
    shared.metrics.clock(reading.offset_ms, reading.in_bounds);
    checker.settle(reading);
}

/// Compares the clocks every `clock_check_secs` until `stop`; the first comparison is
/// [`check`] at start, before the gateway serves.
pub(crate) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let period = shared.settings.clock_check();
    tokio::select! {
        () = clock::every(period, || check(&shared)) => {}
        () = stop.cancelled() => {}
    }
}
