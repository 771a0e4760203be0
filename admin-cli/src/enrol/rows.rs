//! The bulk-enrolment CSV: a header naming `username` (required), `email` and `group`, then one
//! person per row. A bad row is reported with its physical line number and never stops the good
//! ones; only an unreadable file or an unusable header fails the whole file. Reasons never quote
//! the row.

use rampart_core::username::normalize_username;
use std::collections::HashMap;
use std::io::Read;

/// A person to enrol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    /// 1-based line of the file where the row starts (the header is line 1).
    pub(crate) line: u64,
    /// Normalised with [`normalize_username`].
    pub(crate) username: String,
    /// Trimmed; `None` when the column is absent or the cell is empty.
    pub(crate) email: Option<String>,
    /// Trimmed; `None` when the column is absent or the cell is empty.
    pub(crate) group: Option<String>,
}

/// A row that cannot be enrolled, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadRow {
    /// 1-based line of the file where the row starts.
    pub(crate) line: u64,
    /// A short plain-language reason, e.g. "the username is empty".
    pub(crate) reason: String,
}

/// Every row of a file, sorted into usable and bad, each in file order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub(crate) rows: Vec<Row>,
    pub(crate) bad: Vec<BadRow>,
}

/// Why a whole file cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CsvFileError {
    /// The file could not be read.
    #[error("cannot read the CSV file: {0}")]
    Read(#[source] std::io::Error),
    /// The CSV parser failed (not expected for any byte sequence; kept rather than panicking).
    #[error("cannot parse the CSV file: {0}")]
    Parse(#[source] csv::Error),
    /// Not even a header line.
    #[error("the CSV file is empty; its first line must be a header with a username column")]
    Empty,
    /// The header has no `username` column.
    #[error("the CSV header has no username column (found: {})", found.join(", "))]
    NoUsernameColumn {
        /// The header's column names as read (trimmed, lower-cased).
        found: Vec<String>,
    },
    /// A known column appears more than once, so which cell counts would be a guess.
    #[error("the CSV header names the {column} column more than once")]
    DuplicateColumn {
        /// The repeated column.
        column: &'static str,
    },
}

/// Reads a bulk-enrolment CSV. The header row is required; column names are matched trimmed
/// and case-insensitively, and unknown columns are ignored. Handles a UTF-8 BOM, CRLF line ends
/// and quoted fields. Rows whose cells are all empty (blank lines, or `,,` from a spreadsheet)
/// are skipped. A later row with an already-seen username is bad ("duplicate of line N").
pub(crate) fn parse_csv(mut reader: impl Read) -> Result<Parsed, CsvFileError> {
    let mut data = Vec::new();
    reader.read_to_end(&mut data).map_err(CsvFileError::Read)?;
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(data.as_slice());
    let columns = Columns::from_header(csv.byte_headers().map_err(CsvFileError::Parse)?)?;

    let mut parsed = Parsed::default();
    let mut lines = LineCounter::new(&data);
    let mut first_line_of: HashMap<String, u64> = HashMap::new();
    let mut record = csv::ByteRecord::new();
    while csv.read_byte_record(&mut record).map_err(CsvFileError::Parse)? {
        let offset = record.position().map_or(0, csv::Position::byte);
        let line = lines.line_at(usize::try_from(offset).unwrap_or(usize::MAX));
        if record.iter().all(|cell| cell.trim_ascii().is_empty()) {
            continue;
        }
        match columns.row(line, &record) {
            Ok(row) => match first_line_of.get(&row.username) {
                Some(first) => parsed.bad.push(BadRow {
                    line,
                    reason: format!("duplicate of line {first}"),
                }),
                None => {
                    first_line_of.insert(row.username.clone(), line);
                    parsed.rows.push(row);
                }
            },
            Err(reason) => parsed.bad.push(BadRow { line, reason }),
        }
    }
    Ok(parsed)
}

/// Physical line numbers from byte offsets. csv's own `Position::line()` is one short after a
/// CRLF or a blank line (its record position points at the previous line's terminator), so
/// lines are counted here: `\n`, `\r\n` and a lone `\r` each end a line, as csv reads them.
struct LineCounter<'a> {
    data: &'a [u8],
    pos: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0, line: 1 }
    }

    /// The line of the first non-terminator byte at or after `offset`; offsets must not
    /// decrease between calls.
    fn line_at(&mut self, offset: usize) -> u64 {
        let mut start = offset.min(self.data.len());
        while matches!(self.data.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        while self.pos < start {
            let ends_line = match self.data[self.pos] {
                b'\n' => true,
                b'\r' => self.data.get(self.pos + 1) != Some(&b'\n'),
                _ => false,
            };
            self.line += u64::from(ends_line);
            self.pos += 1;
        }
        self.line
    }
}

/// Where the known columns are in each record.
#[derive(Debug)]
struct Columns {
    count: usize,
    username: usize,
    email: Option<usize>,
    group: Option<usize>,
}

impl Columns {
    fn from_header(header: &csv::ByteRecord) -> Result<Self, CsvFileError> {
        if header.is_empty() || header.iter().all(|name| name.trim_ascii().is_empty()) {
            return Err(CsvFileError::Empty);
        }
        let names: Vec<String> = header
            .iter()
            .map(|name| {
                let name = String::from_utf8_lossy(name);
                // csv strips a BOM itself; this catches one that arrived split across reads.
                name.trim_start_matches('\u{feff}').trim().to_lowercase()
            })
            .collect();
        let find = |column: &'static str| -> Result<Option<usize>, CsvFileError> {
            let mut found = names
                .iter()
                .enumerate()
                .filter(|(_, name)| *name == column)
                .map(|(i, _)| i);
            let first = found.next();
            match found.next() {
                Some(_) => Err(CsvFileError::DuplicateColumn { column }),
                None => Ok(first),
            }
        };
        let username = find("username")?;
        let email = find("email")?;
        let group = find("group")?;
        let username = username.ok_or_else(|| CsvFileError::NoUsernameColumn { found: names.clone() })?;
        Ok(Self {
            count: header.len(),
            username,
            email,
            group,
        })
    }

    fn row(&self, line: u64, record: &csv::ByteRecord) -> Result<Row, String> {
        if record.len() != self.count {
            return Err(format!("has {} fields; the header has {}", record.len(), self.count));
        }
        let cell = |index: usize, column: &str| -> Result<&str, String> {
            let bytes = record.get(index).unwrap_or_default();
            std::str::from_utf8(bytes).map_err(|_| format!("the {column} is not valid UTF-8"))
        };
        let username = normalize_username(cell(self.username, "username")?).map_err(|e| e.to_string())?;
        let email = match self.email {
            Some(index) => optional(cell(index, "email")?).map(check_email).transpose()?,
            None => None,
        };
        let group = match self.group {
            Some(index) => optional(cell(index, "group")?).map(check_group).transpose()?,
            None => None,
        };
        Ok(Row {
            line,
            username,
            email,
            group,
        })
    }
}

fn optional(cell: &str) -> Option<&str> {
    Some(cell.trim()).filter(|c| !c.is_empty())
}

/// Only a sanity check, to catch a shifted column or a typo before letters go out: exactly one
/// `@` with something on each side, no white space.
fn check_email(email: &str) -> Result<String, String> {
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the email address contains white space or control characters".into());
    }
    match email.split_once('@') {
        Some((local, domain)) if !domain.contains('@') => {
            if local.is_empty() || domain.is_empty() {
                Err("the email address needs text before and after the @".into())
            } else {
                Ok(email.to_owned())
            }
        }
        _ => Err("the email address must contain exactly one @".into()),
    }
}

fn check_group(group: &str) -> Result<String, String> {
    if group.chars().any(char::is_control) {
        return Err("the group contains control characters".into());
    }
    Ok(group.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn parse(text: &[u8]) -> Parsed {
        parse_csv(text).unwrap()
    }

    fn row(line: u64, username: &str, email: Option<&str>, group: Option<&str>) -> Row {
        Row {
            line,
            username: username.into(),
            email: email.map(Into::into),
            group: group.map(Into::into),
        }
    }

    fn bad(line: u64, reason: &str) -> BadRow {
        BadRow {
            line,
            reason: reason.into(),
        }
    }

    #[test]
    fn reads_rows_with_line_numbers_and_normalised_usernames() {
        let parsed = parse(b"username,email,group\n Alice ,alice@example.org,staff\nbob,,\ncarol,carol@example.org,\n");
        assert_eq!(
            parsed.rows,
            [
                row(2, "alice", Some("alice@example.org"), Some("staff")),
                row(3, "bob", None, None),
                row(4, "carol", Some("carol@example.org"), None),
            ]
        );
        assert!(parsed.bad.is_empty());
    }

    #[test]
    fn header_names_are_trimmed_case_insensitive_and_unknown_ones_ignored() {
        let err = parse_csv(&b" Group ,x\nalice,1\n"[..]).unwrap_err();
        assert!(matches!(err, CsvFileError::NoUsernameColumn { .. }), "{err:?}");

        let parsed = parse(b" Department , USERNAME ,EMAIL\nSales,Dave,dave@example.org\n");
        assert_eq!(parsed.rows, [row(2, "dave", Some("dave@example.org"), None)]);
    }

    #[test]
    fn missing_username_column_names_the_columns_found() {
        let err = parse_csv(&b"user,Email\nalice,alice@example.org\n"[..]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the CSV header has no username column (found: user, email)"
        );
    }

    #[test]
    fn duplicate_known_column_is_a_file_error() {
        let err = parse_csv(&b"username,email,Email \nalice,a@x,b@x\n"[..]).unwrap_err();
        assert!(
            matches!(err, CsvFileError::DuplicateColumn { column: "email" }),
            "{err:?}"
        );
        let err = parse_csv(&b"username,USERNAME\na,b\n"[..]).unwrap_err();
        assert!(
            matches!(err, CsvFileError::DuplicateColumn { column: "username" }),
            "{err:?}"
        );
        // Unknown columns may repeat.
        assert_eq!(parse(b"username,note,note\nalice,1,2\n").rows.len(), 1);
    }

    #[test]
    fn empty_file_is_a_file_error() {
        for text in [&b""[..], b"\n\n", b"\xef\xbb\xbf"] {
            let err = parse_csv(text).unwrap_err();
            assert!(matches!(err, CsvFileError::Empty), "{text:?}: {err:?}");
        }
        // A header alone is a valid, empty file.
        assert_eq!(parse(b"username\n"), Parsed::default());
    }

    #[test]
    fn bom_and_crlf() {
        let parsed = parse(b"\xef\xbb\xbfusername,email\r\nalice,alice@example.org\r\nbob,bob@example.org\r\n");
        assert_eq!(
            parsed.rows,
            [
                row(2, "alice", Some("alice@example.org"), None),
                row(3, "bob", Some("bob@example.org"), None)
            ]
        );
    }

    #[test]
    fn crlf_blank_lines_and_old_mac_line_ends_count_as_lines() {
        let parsed = parse(b"username\r\n\r\n\r\nalice\r\n\"bob\"\r\n\r\ncarol\r\n");
        assert_eq!(
            parsed.rows,
            [
                row(4, "alice", None, None),
                row(5, "bob", None, None),
                row(7, "carol", None, None)
            ]
        );
        let parsed = parse(b"username\ralice\r\rbob");
        assert_eq!(parsed.rows, [row(2, "alice", None, None), row(4, "bob", None, None)]);
    }

    #[test]
    fn quoted_fields_may_hold_commas_quotes_and_newlines() {
        let text =
            b"username,group,email\n\"smith,j\",\"Ops \"\"A\"\"\",\n\"multi\nline\",x,\ndave,y,dave@example.org\n";
        let parsed = parse(text);
        assert_eq!(parsed.rows[0], row(2, "smith,j", None, Some("Ops \"A\"")));
        // A username with a newline is refused, and the next row's line number counts the
        // physical lines of the quoted field.
        assert_eq!(parsed.bad, [bad(3, "the username contains control characters")]);
        assert_eq!(parsed.rows[1], row(5, "dave", Some("dave@example.org"), Some("y")));

        let parsed = parse(b"username,note\r\nalice,\"two\r\nlines\"\r\nbob,\r\n");
        assert_eq!(parsed.rows, [row(2, "alice", None, None), row(4, "bob", None, None)]);
    }

    #[test]
    fn blank_lines_are_skipped_and_still_counted() {
        let parsed = parse(b"username,email\n\nalice,\n   \n,\n , \nbob,\n\n");
        assert_eq!(parsed.rows, [row(3, "alice", None, None), row(7, "bob", None, None)]);
        assert!(parsed.bad.is_empty(), "{:?}", parsed.bad);
    }

    #[test]
    fn wrong_number_of_fields_is_a_bad_row() {
        let parsed = parse(b"username,email,group\nalice,a@example.org\nbob,b@example.org,g,extra\ncarol,,\n");
        assert_eq!(
            parsed.bad,
            [
                bad(2, "has 2 fields; the header has 3"),
                bad(3, "has 4 fields; the header has 3")
            ]
        );
        assert_eq!(parsed.rows, [row(4, "carol", None, None)]);
    }

    #[test]
    fn invalid_utf8_is_a_bad_row_not_a_file_error() {
        let parsed = parse(b"username,email\nal\xffice,\nbob,b\xc3@example.org\ncarol,\n");
        assert_eq!(
            parsed.bad,
            [
                bad(2, "the username is not valid UTF-8"),
                bad(3, "the email is not valid UTF-8")
            ]
        );
        assert_eq!(parsed.rows, [row(4, "carol", None, None)]);
    }

    #[test]
    fn invalid_usernames_give_the_normalisation_reason() {
        let long = "a".repeat(300);
        let text = format!("username,group\n  ,g\n{long},g\n\"a\tb\",g\nok,g\n");
        let parsed = parse(text.as_bytes());
        assert_eq!(
            parsed.bad,
            [
                bad(2, "the username is empty"),
                bad(3, "the username is too long"),
                bad(4, "the username contains control characters"),
            ]
        );
        assert_eq!(parsed.rows, [row(5, "ok", None, Some("g"))]);
    }

    #[test]
    fn email_checks() {
        let text = b"username,email\n\
            a,no-at-sign\n\
            b,two@@example.org\n\
            c,c@d@example.org\n\
            d,d @example.org\n\
            e,@example.org\n\
            f,f@\n\
            g,  g@example.org  \n";
        let parsed = parse(text);
        assert_eq!(
            parsed.bad,
            [
                bad(2, "the email address must contain exactly one @"),
                bad(3, "the email address must contain exactly one @"),
                bad(4, "the email address must contain exactly one @"),
                bad(5, "the email address contains white space or control characters"),
                bad(6, "the email address needs text before and after the @"),
                bad(7, "the email address needs text before and after the @"),
            ]
        );
        assert_eq!(parsed.rows, [row(8, "g", Some("g@example.org"), None)]);
    }

    #[test]
    fn later_duplicates_are_bad_rows_naming_the_first_line() {
        let parsed = parse(b"username\nalice\nbob\n ALICE \nalice\n");
        assert_eq!(parsed.rows, [row(2, "alice", None, None), row(3, "bob", None, None)]);
        assert_eq!(
            parsed.bad,
            [bad(4, "duplicate of line 2"), bad(5, "duplicate of line 2")]
        );
    }

    #[test]
    fn a_bad_row_never_shadows_a_later_good_one() {
        // The first "alice" is bad (bad email), so the second is the first usable one.
        let parsed = parse(b"username,email\nalice,nope\nalice,alice@example.org\n");
        assert_eq!(parsed.bad, [bad(2, "the email address must contain exactly one @")]);
        assert_eq!(parsed.rows, [row(3, "alice", Some("alice@example.org"), None)]);
    }

    #[test]
    fn read_errors_fail_the_file() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk on fire"))
            }
        }
        let err = parse_csv(Failing).unwrap_err();
        assert!(matches!(err, CsvFileError::Read(_)), "{err:?}");
        assert_eq!(err.to_string(), "cannot read the CSV file: disk on fire");
    }
}
