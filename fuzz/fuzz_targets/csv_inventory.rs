//! Fuzzes the VM inventory CSV reader (`rampart vm import`): no panic, and every usable row has
//! a unique id without spaces and an address the gateway can dial.

#![no_main]

#[allow(dead_code)]
#[path = "../../admin-cli/src/vm/inventory.rs"]
mod inventory;

use libfuzzer_sys::fuzz_target;
use rampart_core::policy::Target;
use std::collections::HashSet;

fuzz_target!(|data: &[u8]| {
    let Ok(inventory) = inventory::parse_inventory(data) else {
        return;
    };
    let mut ids = HashSet::new();
    for row in &inventory.rows {
        assert!(!row.id.is_empty() && row.id.len() <= 128);
        assert!(!row.id.chars().any(|c| c.is_whitespace() || c.is_control()));
        assert!(ids.insert(row.id.as_str()), "duplicate id {:?}", row.id);
        let host = Target::check_host(&row.address).expect("a usable row's address is a host");
        // The canonical form is itself acceptable and stable.
        assert_eq!(Target::check_host(&host).as_ref(), Ok(&host));
    }
    for (_, reason) in &inventory.bad {
        assert!(!reason.is_empty());
    }
});
