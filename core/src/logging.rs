//! Process logs that outside text cannot forge: every field value and message is escaped once,
//! here, in the formatter, so no call site has to remember to. In the text format control and
//! invisible characters become `\u{…}` escapes (one event is one line, no terminal escape
//! reaches a reader); in the JSON format, what serde_json leaves raw but some readers or
//! terminals still obey (DEL, C1 controls, U+2028/U+2029, bidirectional and zero-width marks) is
//! written as a `\uXXXX` escape, so one event is one JSON line for every reader.

use crate::text::{escape_json_extras, is_hazard, printable};
use std::fmt;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::{DefaultVisitor, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber writing to standard error, filtered by `RUST_LOG` or else
/// `default_filter` (e.g. `"info"`); later calls are ignored. Colours only on a terminal.
pub fn init(format: Format, default_filter: &str) {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        Format::Text => builder.fmt_fields(EscapedFields).try_init(),
        Format::Json => builder
            .json()
            .flatten_event(true)
            .map_event_format(EscapedJson)
            .try_init(),
    };
}

/// Text-format fields with every value and message escaped by [`printable`].
#[derive(Debug, Clone, Copy, Default)]
pub struct EscapedFields;

impl<'a> MakeVisitor<Writer<'a>> for EscapedFields {
    type Visitor = EscapedVisitor<'a>;

    fn make_visitor(&self, target: Writer<'a>) -> Self::Visitor {
        EscapedVisitor(DefaultVisitor::new(target, true))
    }
}

/// The default text visitor, given escaped values only.
#[derive(Debug)]
pub struct EscapedVisitor<'a>(DefaultVisitor<'a>);

impl Visit for EscapedVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            // Quoted, as the default visitor writes string values.
            self.0.record_debug(field, &format_args!("\"{}\"", printable(value)));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if text.chars().any(is_hazard) {
            self.0.record_debug(field, &format_args!("{}", printable(&text)));
        } else {
            self.0.record_debug(field, &format_args!("{text}"));
        }
    }
}

impl VisitOutput<fmt::Result> for EscapedVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.0.finish()
    }
}

impl VisitFmt for EscapedVisitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        self.0.writer()
    }
}

/// A JSON event format whose output has no raw character a reader could take for a line break
/// or a terminal could obey: see the module header.
#[derive(Debug, Clone)]
pub struct EscapedJson<F>(pub F);

impl<S, N, F> FormatEvent<S, N> for EscapedJson<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        writer.write_str(&escape_json_extras(&line))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Self;
        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    const HOSTILE: &str = "db\n2026-01-01T00:00:00Z  INFO rampart::auth: login accepted user=root\u{1b}[31m\r\u{7f}\u{85}\u{2028}\u{202e}";

    fn emit() {
        let reason = String::from(HOSTILE);
        tracing::info!(target: "rampart::flow", resource = %HOSTILE, debug = ?HOSTILE, plain = HOSTILE, "denied {reason}");
        tracing::warn!(target: "rampart::flow", error = &std::io::Error::other(HOSTILE) as &dyn std::error::Error, "failed");
    }

    #[test]
    fn a_text_event_is_one_line_without_raw_controls() {
        let out = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(out.clone())
            .fmt_fields(EscapedFields)
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let text = out.text();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(!text.chars().any(|c| c != '\n' && is_hazard(c)), "{text:?}");
        assert!(text.contains("resource=db\\u{a}2026"), "{text}");
        assert!(text.contains("plain=\"db\\u{a}2026"), "{text}");
        assert!(text.contains("denied db\\u{a}"), "{text}");
        assert!(text.contains("\\u{1b}[31m"), "{text}");
    }

    #[test]
    fn a_json_event_is_one_line_that_every_reader_sees_whole() {
        let out = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(out.clone())
            .json()
            .flatten_event(true)
            .map_event_format(EscapedJson)
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let text = out.text();
        assert!(!text.chars().any(|c| c != '\n' && is_hazard(c)), "{text:?}");
        let lines: Vec<&str> = text.split('\n').filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 2, "{text}");
        let event: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(
            event["resource"], HOSTILE,
            "the value itself survives, escaped only on the wire"
        );
    }
}
