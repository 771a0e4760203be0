//! Output for people and for scripts: aligned tables with plain dates, or JSON
//! (`--output json`) carrying the API's fields unchanged. Text for people goes through
//! [`say!`] or [`Table`], which escape control and invisible characters in outside text (a
//! display name from the directory cannot move the cursor, recolour or fake a line).

use serde::Serialize;
use std::io::Write;

/// How results are printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Aligned columns for people.
    #[default]
    Table,
    /// JSON for scripts.
    Json,
}

/// Prints one message for people on standard output, like `println!`, with control and
/// invisible characters escaped (line breaks in the text itself are kept).
macro_rules! say {
    () => {
        $crate::view::say_text("")
    };
    ($($arg:tt)*) => {
        $crate::view::say_text(&format!($($arg)*))
    };
}
pub(crate) use say;

/// `println!` for results on standard output: a reader that stops early (`rampart token list |
/// head`) ends the command quietly instead of a panic. Text is written as given (no escaping:
/// use [`say!`] for text that holds outside strings).
macro_rules! out {
    () => {
        $crate::view::out_text("")
    };
    ($($arg:tt)*) => {
        $crate::view::out_text(&format!($($arg)*))
    };
}
pub(crate) use out;

/// What [`out!`] prints: `text` and a newline; exits with status 0 when the reader has gone.
pub fn out_text(text: &str) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = writeln!(stdout, "{text}").and_then(|()| stdout.flush())
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

/// What [`say!`] prints: `text` made printable, and a newline. A reader that stops early
/// (`| head`) is not an error.
pub fn say_text(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", rampart_core::text::printable_lines(text)).and_then(|()| out.flush());
}

/// Prints `value` as pretty JSON on standard output.
pub fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    let mut out = std::io::stdout().lock();
    // A reader that stops early (`| head`) is not an error worth a panic or a message.
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// A progress bar on standard error for `len` items called `unit`; hidden for JSON output and
/// when standard error is not a terminal.
pub fn progress_bar(len: usize, output: Output, unit: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    let bar = indicatif::ProgressBar::new(u64::try_from(len).unwrap_or(u64::MAX));
    if output == Output::Json || !std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    } else if let Ok(style) = indicatif::ProgressStyle::with_template(&format!(
        "{{bar:40}} {{pos}}/{{len}} {unit}  {{elapsed}} (eta {{eta}})"
    )) {
        bar.set_style(style);
    }
    bar
}

/// A table: a header and rows of cells, printed with columns aligned.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&'static str]) -> Self {
        Self {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells print empty).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, one line per row, columns separated by two spaces.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(width) = widths.get_mut(i) {
                    *width = (*width).max(clean(cell).chars().count());
                }
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.header.iter().map(|h| (*h).to_owned()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = row.get(i).map(String::as_str).unwrap_or("");
                let cell = clean(cell);
                line.push_str(&cell);
                if i + 1 < widths.len() {
                    let pad = width.saturating_sub(cell.chars().count()) + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// Prints the table, or `empty` when it has no rows.
    pub fn print(&self, empty: &str) {
        if self.rows.is_empty() {
            out!("{empty}");
        } else {
            out!("{}", self.render().trim_end_matches('\n'));
        }
    }
}

/// Control and invisible characters from outside data never reach the terminal.
fn clean(cell: &str) -> String {
    rampart_core::text::printable(cell)
}

/// Unix seconds as `2026-03-16 09:30Z`; `-` for none.
pub fn time(unix: Option<i64>) -> String {
    unix.map_or_else(|| "-".to_owned(), rampart_core::text::utc_minute)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_control_characters_are_neutralised() {
        let mut table = Table::new(&["USER", "STATE"]);
        table.row(vec!["alice".into(), "active".into()]);
        table.row(vec!["b\u{1b}[31m".into(), "pending".into()]);
        let text = table.render();
        let lines: Vec<&str> = text.lines().collect();
        // The escape sequence is written out, and the column is as wide as what is shown.
        assert_eq!(lines[0], "USER         STATE");
        assert_eq!(lines[1], "alice        active");
        assert_eq!(lines[2], "b\\u{1b}[31m  pending");
        assert!(!text.contains('\u{1b}'));
        assert_eq!(time(Some(0)), "1970-01-01 00:00Z");
        assert_eq!(time(None), "-");
    }
}
