//! Fuzzes the bulk-enrolment CSV reader (`rampart enrol --csv`): no panic; every usable row has
//! a normalised, unique username and a plausible email; rows and bad rows are in file order on
//! real lines; and no reason quotes the file.

#![no_main]

#[allow(dead_code)]
#[path = "../../admin-cli/src/enrol/rows.rs"]
mod rows;

use libfuzzer_sys::fuzz_target;
use rampart_core::username::normalize_username;
use std::collections::HashSet;

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = rows::parse_csv(data) else {
        return;
    };
    let physical_lines = 1 + data.iter().filter(|&&b| b == b'\n' || b == b'\r').count() as u64;
    let mut seen = HashSet::new();
    let mut last = 1;
    for row in &parsed.rows {
        assert!(row.line > last && row.line <= physical_lines, "line {}", row.line);
        last = row.line;
        assert_eq!(normalize_username(&row.username).as_ref(), Ok(&row.username));
        assert!(seen.insert(row.username.as_str()), "duplicate {:?}", row.username);
        if let Some(email) = &row.email {
            assert_eq!(email.matches('@').count(), 1);
            assert!(!email.chars().any(char::is_whitespace));
        }
        if let Some(group) = &row.group {
            assert!(!group.is_empty() && !group.chars().any(char::is_control));
        }
    }
    let mut last = 1;
    for bad in &parsed.bad {
        assert!(bad.line > 1 && bad.line <= physical_lines, "line {}", bad.line);
        assert!(bad.line >= last);
        last = bad.line;
        // Reasons are fixed sentences with numbers: nothing from the row itself.
        assert!(
            bad.reason.chars().all(|c| c.is_ascii_graphic() || c == ' '),
            "{:?}",
            bad.reason
        );
    }
});
