//! Self-service enrolment: the desk's registration codes, and the employee's start and
//! confirmation of an enrolment. Answers that hold a code or a secret keep it out of `Debug`.

pub use rampart_core::registration::Delivery;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What the desk asks for: how the code reaches the person and, optionally, for how long it
/// works (default: `registration_code_days`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegistrationCodeRequest {
    /// `letter`, `phone` or `email`.
    #[schema(value_type = String, example = "letter")]
    pub delivery: Delivery,
    /// Days it stays valid, 1 to 90.
    #[serde(default)]
    pub valid_days: Option<u32>,
}

/// A newly issued registration code: the only answer that contains it.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct IssuedRegistrationCode {
    /// The person's username.
    pub username: String,
    /// Their display name.
    pub display_name: String,
    /// The code's id, as history and audit records name it.
    pub code_id: String,
    /// The code, as the person types it (`XXXX-XXXX-XXXX-XXXX`).
    pub registration_code: String,
    /// How it is delivered.
    #[schema(value_type = String)]
    pub delivery: Delivery,
    /// Unix seconds after which it no longer works.
    pub expires_at: i64,
}

impl std::fmt::Debug for IssuedRegistrationCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedRegistrationCode")
            .field("username", &self.username)
            .field("code_id", &self.code_id)
            .field("delivery", &self.delivery)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// An employee starting their enrolment: directory password and registration code.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct StartEnrolmentRequest {
    /// Username as the person types it.
    pub username: String,
    /// Directory password.
    pub password: String,
    /// The registration code from the letter, call or e-mail.
    pub registration_code: String,
}

impl std::fmt::Debug for StartEnrolmentRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartEnrolmentRequest")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A started enrolment: the new authenticator's secret, shown this once, to be confirmed with
/// its first code before `confirm_before`.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct StartedEnrolment {
    /// The handle to confirm with.
    pub enrolment_id: String,
    /// The person's username.
    pub username: String,
    /// `otpauth://totp/…` for authenticator apps.
    pub otpauth_uri: String,
    /// The same secret in base 32, for apps where it is typed.
    pub secret: String,
    /// Issuer shown in authenticator apps.
    pub issuer: String,
    /// Unix seconds by which the first code must confirm it.
    pub confirm_before: i64,
    /// The QR code as an SVG document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_svg: Option<String>,
    /// The QR code drawn with block characters, for a terminal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_text: Option<String>,
}

impl std::fmt::Debug for StartedEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartedEnrolment")
            .field("enrolment_id", &self.enrolment_id)
            .field("username", &self.username)
            .field("confirm_before", &self.confirm_before)
            .finish_non_exhaustive()
    }
}

/// The first code from the new authenticator.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct ConfirmEnrolmentRequest {
    /// Username.
    pub username: String,
    /// The code the authenticator shows now.
    pub code: String,
}

impl std::fmt::Debug for ConfirmEnrolmentRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfirmEnrolmentRequest")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A confirmed enrolment: the token is active.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConfirmedEnrolment {
    /// The person's username.
    pub username: String,
    /// The new token.
    pub token_id: String,
    /// The token it replaced, if any.
    pub replaced: Option<String>,
}
