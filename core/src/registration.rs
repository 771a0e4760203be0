//! How a registration code for self-service enrolment reaches the person: a plain name shared by
//! the store, the provisioner's API and the `rampart` CLI.

use std::fmt;

/// How the code reaches the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// A printed letter.
    Letter,
    /// Read out on the phone by the desk.
    Phone,
    /// Sent by e-mail.
    Email,
}

impl Delivery {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Letter => "letter",
            Self::Phone => "phone",
            Self::Email => "email",
        }
    }

    /// The delivery a stored name stands for.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "letter" => Some(Self::Letter),
            "phone" => Some(Self::Phone),
            "email" => Some(Self::Email),
            _ => None,
        }
    }
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_the_wire() {
        for delivery in [Delivery::Letter, Delivery::Phone, Delivery::Email] {
            assert_eq!(Delivery::parse(delivery.as_str()), Some(delivery));
            assert_eq!(delivery.to_string(), delivery.as_str());
            let json = serde_json::to_string(&delivery).ok();
            assert_eq!(json, Some(format!("\"{}\"", delivery.as_str())));
        }
        assert_eq!(Delivery::parse("Letter"), None);
    }
}
