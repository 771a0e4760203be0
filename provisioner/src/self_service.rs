//! Wire types of self-service enrolment: the desk's registration codes, and the employee's
//! start and confirmation of an enrolment. Defined in `rampart-api`; also re-exported from
//! [`crate::api`].

pub use rampart_api::provisioner::{
    ConfirmEnrolmentRequest, ConfirmedEnrolment, IssuedRegistrationCode, RegistrationCodeRequest,
    StartEnrolmentRequest, StartedEnrolment,
};
