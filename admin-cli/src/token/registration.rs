//! `rampart token registration-code USER --by letter|phone|email`: a registration code for
//! self-service enrolment, shown once, to hand over by the way named.

use crate::client::{CliError, Client, segment};
use crate::view::out;
use crate::view::{Output, json, time};
use rampart_api::provisioner::Delivery;
use rampart_api::provisioner::{IssuedRegistrationCode, RegistrationCodeRequest};
use rampart_core::text::printable;

/// How the code reaches the person.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum By {
    /// A printed letter.
    Letter,
    /// Read out on the phone.
    Phone,
    /// Sent by e-mail.
    Email,
}

impl From<By> for Delivery {
    fn from(by: By) -> Self {
        match by {
            By::Letter => Delivery::Letter,
            By::Phone => Delivery::Phone,
            By::Email => Delivery::Email,
        }
    }
}

/// Issues the code and shows it once.
pub async fn issue(client: &Client, output: Output, user: &str, by: By, days: Option<u32>) -> Result<(), CliError> {
    let request = RegistrationCodeRequest {
        delivery: by.into(),
        valid_days: days,
    };
    let issued: IssuedRegistrationCode = client
        .post(&format!("/v1/people/{}/registration-code", segment(user)), &request)
        .await?;
    match output {
        Output::Json => json(&issued)?,
        Output::Table => out!(
            "Registration code for {} ({}), shown only now:\n\n    {}\n\n\
             Give it by {} with the enrolment instructions; it works until {} with their directory password,\n\
             once. `rampart-connect enrol` asks for both. Earlier codes no longer work.",
            printable(&issued.username),
            printable(&issued.display_name),
            issued.registration_code,
            issued.delivery,
            time(Some(issued.expires_at)),
        ),
    }
    Ok(())
}
