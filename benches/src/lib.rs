//! Benchmarks and side-by-side harnesses against real peers. Each binary in `src/bin` prints
//! its figures and the ratio to the peer measured in the same run; run them with
//! `cargo run --release -p rampart-benches --bin NAME`.

pub mod probe;
pub mod provisioner;
pub mod storm;
pub mod tunnel;

/// The value at quantile `q` (0–1) of sorted samples.
pub fn quantile(sorted: &[std::time::Duration], q: f64) -> std::time::Duration {
    if sorted.is_empty() {
        return std::time::Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}
