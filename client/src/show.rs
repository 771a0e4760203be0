//! How a session is shown to the person: the resources they may reach, with descriptions and
//! hours, times in their own time zone, and the one line that says a session has ended.

use crate::error::exit;
use crate::tunnel::Ended;
use rampart_core::protocol::ResourceInfo;
use rampart_core::text::printable;

/// "You can reach:" and one line per resource, or that none are open yet.
pub fn print_resources(resources: &[ResourceInfo]) {
    if resources.is_empty() {
        println!("No resources are open to you yet; ask the service desk.");
        return;
    }
    println!("You can reach:");
    print_resource_lines(resources);
}

/// One line per resource: name, description and, when limited, its hours.
pub fn print_resource_lines(resources: &[ResourceInfo]) {
    for r in resources {
        let hours = r
            .hours
            .as_deref()
            .map(|h| format!(" (open {})", printable(h)))
            .unwrap_or_default();
        println!("  {:<20} {}{hours}", printable(&r.name), printable(&r.description));
    }
}

/// `unix` in this computer's time zone: "2026-12-05 22:40 CET".
pub fn local_time(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| {
            t.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M %Z")
                .to_string()
        })
        .unwrap_or_else(|_| unix.to_string())
}

/// The session ended while forwarding: listeners stop, and the person reads one line saying so,
/// why as far as the gateway said, and to log in again. Returns the exit code.
pub fn session_over(ended: &Ended) -> u8 {
    eprintln!("{}", ended.explain());
    exit::SESSION
}
