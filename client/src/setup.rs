//! `rampart-connect setup`: imports the service desk's profile (a file, the one-line
//! `rampart-profile:` form, or standard input) into the home folder, and says what is next.

use crate::error::exit;
use crate::{ClientError, Home};
use rampart_core::profile::Profile;
use rampart_core::text::printable;
use std::io::Read;

/// Reads the profile from `source` (`-` for standard input, the profile's text itself, or a
/// file), checks and saves it, and names the organisation, gateways and next step.
pub fn run(home: &Home, source: &str) -> Result<u8, ClientError> {
    let text = if source == "-" {
        read_limited(std::io::stdin(), "standard input")?
    } else if source.trim_start().starts_with(rampart_core::profile::LINE_PREFIX)
        || source.trim_start().starts_with('{')
    {
        source.to_owned()
    } else {
        let file = std::fs::File::open(source)
            .map_err(|e| ClientError::Local(format!("cannot read the profile file {source}: {e}")))?;
        read_limited(file, source)?
    };
    let profile = Profile::parse(&text).map_err(|e| ClientError::Local(e.to_string()))?;
    home.save_profile(&profile)?;
    let org = if profile.organisation.is_empty() {
        "your organisation".to_owned()
    } else {
        printable(&profile.organisation)
    };
    println!("Set up for {org}. Gateways: {}.", profile.gateways.join(", "));
    if let Some(user) = &profile.user {
        println!("Username: {}.", printable(user));
    }
    if profile.enrol_url.is_some() {
        println!(
            "Next: rampart-connect login — or first, with a registration code from the service desk, \
             rampart-connect enrol"
        );
    } else {
        println!("Next: rampart-connect login");
    }
    Ok(exit::OK)
}

/// Reads a profile, stopping one byte past the size limit so `setup /dev/zero` cannot fill
/// memory; [`Profile::parse`] then names the limit.
fn read_limited(source: impl Read, name: &str) -> Result<String, ClientError> {
    let limit = u64::try_from(rampart_core::profile::MAX_PROFILE_BYTES).unwrap_or(u64::MAX);
    let mut text = String::new();
    source
        .take(limit.saturating_add(1))
        .read_to_string(&mut text)
        .map_err(|e| ClientError::Local(format!("cannot read the profile from {name}: {e}")))?;
    Ok(text)
}
