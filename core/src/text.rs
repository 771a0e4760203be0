//! Text from outside (a server's message, a username, a resource description) made safe to show
//! on a terminal: control and invisible characters are escaped, so the text cannot move the
//! cursor, change colours, hide itself or fake a line. Also a JSON line no reader splits
//! ([`escape_json_extras`]) and a spreadsheet cell that cannot become a formula ([`csv_cell`]).
//! Also the one way a time is written for people ([`utc_minute`]).

/// `text` with control and invisible characters written as `\u{…}` escapes.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_hazard(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// Like [`printable`], but keeps line breaks, for multi-line text such as an explanation.
pub fn printable_lines(text: &str) -> String {
    text.split('\n').map(printable).collect::<Vec<_>>().join("\n")
}

/// Unix seconds as `2026-03-16 09:30Z`, the form every time shown to people takes (tables,
/// history details, messages); the number itself if it is out of range.
pub fn utc_minute(unix: i64) -> String {
    jiff::Timestamp::from_second(unix).map_or_else(|_| unix.to_string(), |t| t.strftime("%Y-%m-%d %H:%MZ").to_string())
}

/// `cell` as a CSV value a spreadsheet shows as text, never runs as a formula: a value starting
/// with `=`, `+`, `-`, `@` (or their fullwidth forms), a tab or a carriage return gets a leading
/// single quote (OWASP's advice for CSV injection). Every CSV the product writes goes through it.
pub fn csv_cell(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\u{ff1d}' | '\u{ff0b}' | '\u{ff0d}' | '\u{ff20}') => {
            std::borrow::Cow::Owned(format!("'{cell}"))
        }
        _ => std::borrow::Cow::Borrowed(cell),
    }
}

/// `json` with the characters serde_json leaves raw but [`is_hazard`] names written as `\uXXXX`
/// (all are in the Basic Multilingual Plane, and outside strings JSON holds none of them).
pub fn escape_json_extras(json: &str) -> std::borrow::Cow<'_, str> {
    let needs = |c: char| c >= '\u{7f}' && is_hazard(c);
    if !json.chars().any(needs) {
        return std::borrow::Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if needs(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Whether `c` is a control or invisible character a terminal or line reader could obey.
pub fn is_hazard(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{61c}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{200b}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_a_terminal_would_obey() {
        assert_eq!(printable("ok"), "ok");
        assert_eq!(printable("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(printable("x\ny\r"), "x\\u{a}y\\u{d}");
        assert_eq!(printable("\u{202e}txt"), "\\u{202e}txt");
        assert_eq!(printable_lines("one\ntwo\u{7}"), "one\ntwo\\u{7}");
    }

    #[test]
    fn json_lines_keep_no_character_a_reader_splits_on() {
        let line = serde_json::json!({"v": "a\u{7f}b\u{85}c\u{2028}d\u{202e}e\n"}).to_string();
        let safe = escape_json_extras(&line);
        assert_eq!(safe, r#"{"v":"a\u007fb\u0085c\u2028d\u202ee\n"}"#);
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap_or_default();
        assert_eq!(back["v"], "a\u{7f}b\u{85}c\u{2028}d\u{202e}e\n");
        assert!(matches!(
            escape_json_extras("{\"v\":\"plain\"}"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn times_are_written_as_dates() {
        assert_eq!(utc_minute(1_796_407_426), "2026-12-04 18:03Z");
        assert_eq!(utc_minute(0), "1970-01-01 00:00Z");
        assert_eq!(utc_minute(i64::MAX), i64::MAX.to_string());
    }

    #[test]
    fn csv_cells_never_start_a_formula() {
        for hostile in [
            "=HYPERLINK(\"http://x\",\"y\")",
            "+1",
            "-2+3",
            "@SUM(A1)",
            "\t=1",
            "\r=1",
            "＝1",
        ] {
            assert_eq!(csv_cell(hostile), format!("'{hostile}"));
        }
        for plain in ["alice", "Alice Example", "", "a=b", "'quoted"] {
            assert_eq!(csv_cell(plain), plain);
        }
    }
}
