//! `rampart report capacity`: each pool's use and how soon it fills.

use crate::client::{CliError, Client};
use crate::view::{Output, Table, json};
use rampart_api::vms::CapacityReport;

/// `rampart report capacity`.
pub async fn capacity(client: &Client, output: Output) -> Result<(), CliError> {
    let report: CapacityReport = client.get("/v1/reports/capacity").await?;
    match output {
        Output::Json => json(&report)?,
        Output::Table => {
            let mut table = Table::new(&[
                "POOL",
                "CAPACITY",
                "ALLOCATED",
                "FREE",
                "MAINTENANCE",
                "PROVISIONING",
                "PER DAY (7 d)",
                "DAYS LEFT",
            ]);
            for p in &report.pools {
                table.row(vec![
                    p.pool.name.clone(),
                    p.pool.capacity.to_string(),
                    p.pool.allocated.to_string(),
                    p.pool.free.to_string(),
                    p.pool.maintenance.to_string(),
                    p.pool.provisioning.to_string(),
                    format!("{:.1}", p.rate_per_day),
                    p.days_until_full.map_or_else(|| "-".to_owned(), |d| format!("{d:.1}")),
                ]);
            }
            table.print("No pools yet.");
        }
    }
    Ok(())
}
