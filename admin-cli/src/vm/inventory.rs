//! The VM inventory CSV: a header naming `id` and `address` (other columns are ignored), then
//! one VM per row. A bad row is reported with its line and never stops the good ones.

use std::collections::HashSet;

/// A VM to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InventoryRow {
    /// 1-based line (the header is line 1).
    pub(crate) line: u64,
    /// VM id.
    pub(crate) id: String,
    /// Host name or IP address.
    pub(crate) address: String,
}

/// Rows sorted into usable and bad (line, reason).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Inventory {
    pub(crate) rows: Vec<InventoryRow>,
    pub(crate) bad: Vec<(u64, String)>,
}

/// Parses an inventory file's bytes; only a missing header fails the whole file.
pub(crate) fn parse_inventory(data: &[u8]) -> Result<Inventory, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(data);
    let headers = reader
        .headers()
        .map_err(|e| format!("cannot read the CSV header: {e}"))?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(id_col), Some(address_col)) = (column("id"), column("address")) else {
        return Err(format!(
            "the CSV header must name an id and an address column (found: {})",
            headers.iter().collect::<Vec<_>>().join(", ")
        ));
    };
    let mut inventory = Inventory::default();
    let mut seen = HashSet::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                inventory.bad.push((line, "not a readable CSV row".into()));
                continue;
            }
        };
        let line = record.position().map_or(0, csv::Position::line);
        let id = record.get(id_col).unwrap_or("").to_owned();
        let address = record.get(address_col).unwrap_or("").to_owned();
        let problem = if id.is_empty() {
            Some("the id is empty".to_owned())
        } else if id.chars().any(|c| c.is_whitespace() || c.is_control()) || id.len() > 128 {
            Some("the id has spaces or is longer than 128 characters".to_owned())
        } else if address.is_empty() {
            Some("the address is empty".to_owned())
        } else if rampart_core::policy::Target::check_host(&address).is_err() {
            Some("the address is not a host name or IP address".to_owned())
        } else if !seen.insert(id.clone()) {
            Some(format!("{id} appears twice in the file"))
        } else {
            None
        };
        match problem {
            Some(reason) => inventory.bad.push((line, reason)),
            None => inventory.rows.push(InventoryRow { line, id, address }),
        }
    }
    Ok(inventory)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn good_rows_are_kept_and_bad_ones_named_by_line() {
        let text = "ID,Address,rack\nvm1,10.0.0.1,a\n,10.0.0.2,b\nvm3,,c\nvm4,bad host,d\nvm1,10.0.0.9,e\nvm6,vm6.vdi.example\n\
                    vm7,allocated:desktops,f\nvm8,[fe80::1],g\nvm9,fe80::9,h\n";
        let inv = parse_inventory(text.as_bytes()).unwrap();
        let ids: Vec<&str> = inv.rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["vm1", "vm6", "vm9"]);
        assert_eq!(inv.rows[1].line, 7);
        let lines: Vec<u64> = inv.bad.iter().map(|(l, _)| *l).collect();
        // Addresses the gateway could never dial are refused here, not at the first connection.
        assert_eq!(lines, [3, 4, 5, 6, 8, 9]);
        assert!(inv.bad[3].1.contains("twice"));
    }

    #[test]
    fn a_file_without_the_columns_is_refused_whole() {
        let err = parse_inventory(b"name,ip\nvm1,10.0.0.1\n").unwrap_err();
        assert!(err.contains("id and an address"), "{err}");
    }
}
