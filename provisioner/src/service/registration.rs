//! Self-service enrolment. The desk issues a registration code (a letter, a phone call or an
//! e-mail carries it instead of a seed); the person, with their directory password and that
//! code, starts an enrolment and sees the new seed once; the first code of their authenticator
//! confirms it and the token is active. The password alone, or the code alone, enrols nobody.
//!
//! Every refused start is answered alike, after the same delay, whatever was wrong (unknown
//! person, password, code). The code is checked first and the directory asked only for someone
//! holding it, so this is no oracle for passwords; a wrong password with the right code counts
//! against the code, a wrong code does not (80 random bits are not guessed, and counting them
//! would let anyone who knows a username spend that person's code).

use super::{Provisioner, ServiceError, random_hex, token_change};
use crate::api::{ConfirmedEnrolment, IssuedRegistrationCode, StartedEnrolment};
use rampart_core::audit::{Activity, Actor, AuditEvent, Class, Status, User};
use rampart_core::secret::Sensitive;
use rampart_core::totp::{TotpParams, otpauth_uri, secret_base32, verify_totp};
use rampart_store::IssueMode;
use rampart_store::registration::{
    CodeCheck, Confirmation, Confirmed, Delivery, Enrolment, REGISTRATION_CODE_BYTES, RegistrationCode,
    display_registration_code, parse_registration_code, registration_code_from, registration_code_hash,
};
use ring::rand::{SecureRandom, SystemRandom};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Seed length in bytes (160 bits, RFC 4226's recommendation), as for desk-issued tokens.
const SEED_LEN: usize = 20;

/// Why a start or a confirmation was refused. What the person is told never says which of the
/// password and the code was wrong.
#[derive(Debug, thiserror::Error)]
pub enum EnrolmentRefusal {
    /// The username, password or registration code is not right (or the code is used, expired
    /// or spent): answered after the same delay in every case.
    #[error(
        "the username, password or registration code is not right, or the code has expired or been used; \
         check them, or ask the service desk for a new registration code"
    )]
    NotAccepted,
    /// The first code from the authenticator is not right; `tries_left` before the enrolment
    /// is dropped.
    #[error(
        "that code is not right: add the account from the QR code and type the code it shows now ({tries_left} tries left)"
    )]
    WrongCode {
        /// Tries left.
        tries_left: u32,
    },
    /// Too many enrolment starts from this address: wait `secs` seconds.
    #[error("too many tries from your address: wait {secs} seconds and try again")]
    Wait {
        /// Seconds until the next try is taken.
        secs: u64,
    },
    /// The enrolment is unknown, expired, spent, or its code was replaced: start again.
    #[error("this enrolment has expired or was replaced: start again with your registration code")]
    Gone,
    /// Something else failed (store, directory, clock): nothing was changed; retry later.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl Provisioner {
    /// Issues a registration code to the person named `username` in the directory, withdrawing
    /// their earlier codes. The answer is the only time the code is shown.
    pub async fn issue_registration_code(
        &self,
        actor: &str,
        username: &str,
        delivery: Delivery,
        valid_days: Option<u32>,
    ) -> Result<IssuedRegistrationCode, ServiceError> {
        self.require_clock("issue a registration code")?;
        let days = valid_days.unwrap_or(self.settings.registration_code_days);
        if !(1..=90).contains(&days) {
            return Err(ServiceError::Invalid(format!(
                "a registration code is valid for 1 to 90 days (not {days})"
            )));
        }
        let person = self.directory_person(username).await?;
        let now = self.now();
        let user = self.user_record(&person, now).await?;
        // A code would let the person replace a token one operator could not replace alone.
        if self.resets_need_approval()
            && (self.store.live_token_for_user(&user.id).await?.is_some()
                || self.replaces_an_earlier_token(&user.id).await?)
        {
            return Err(ServiceError::Conflict(format!(
                "dual control is on and {} has (or had) a token: a new one waits for a second operator's approval \
                 (`rampart token lost {0} --replacement` or `rampart token issue {0} --reissue`); registration codes \
                 are for people enrolling for the first time",
                user.username
            )));
        }
        self.store.upsert_user(&user).await?;
        let mut random = Zeroizing::new([0u8; REGISTRATION_CODE_BYTES]);
        fill(&mut *random)?;
        let code = Zeroizing::new(registration_code_from(&random));
        let record = RegistrationCode {
            id: random_hex(8)?,
            user_id: user.id.clone(),
            code_hash: registration_code_hash(&user.id, &code),
            created_at: now,
            expires_at: now + i64::from(days) * 86_400,
            created_by: actor.to_owned(),
            delivery,
        };
        self.store.issue_registration_code(&record).await?;
        let detail = format!("registration code {} by {delivery}", record.id);
        token_change(
            &self.audit,
            actor,
            Activity::CREATE,
            "registration code issued",
            (&user.username, &user.id),
            None,
            &detail,
        );
        Ok(IssuedRegistrationCode {
            username: user.username,
            display_name: user.display_name,
            code_id: record.id,
            registration_code: display_registration_code(&code),
            delivery,
            expires_at: record.expires_at,
        })
    }

    /// Starts an enrolment for a person who gives their directory password and registration
    /// code: a new seed, sealed and kept until confirmed, shown in this answer only. A refusal
    /// comes after [`ProvisionerSettings::enrolment_failure_delay_ms`] from the start, whatever
    /// was wrong.
    pub async fn start_enrolment(
        &self,
        username: &str,
        password: &Sensitive<String>,
        code: &Sensitive<String>,
        source: Option<SocketAddr>,
    ) -> Result<StartedEnrolment, EnrolmentRefusal> {
        let started = Instant::now();
        if let Some(addr) = source
            && let Err(secs) = self
                .enrolment_limiter
                .admit(addr.ip(), self.console.sign_ins_per_minute, started)
        {
            tracing::warn!(target: "rampart::provisioner", source = %addr, "enrolment starts beyond the limit");
            return Err(EnrolmentRefusal::Wait { secs });
        }
        let result = self.try_start(username, password, code).await;
        let outcome = match &result {
            Ok(_) => Status::Success,
            Err(_) => Status::Failure,
        };
        let reason = match &result {
            Ok(_) => "started",
            Err(Refused::Person) => "unknown_or_disabled",
            Err(Refused::Password) => "wrong_password",
            Err(Refused::Code) => "wrong_or_spent_code",
            Err(Refused::Service(_)) => "unavailable",
        };
        let known = self.known_name(username).await;
        self.audit_enrolment(&known, "enrolment start", outcome, reason, source);
        match result {
            Ok(started) => Ok(started),
            Err(Refused::Service(e)) => Err(EnrolmentRefusal::Service(e)),
            Err(_) => {
                let delay = Duration::from_millis(self.settings.enrolment_failure_delay_ms);
                tokio::time::sleep(delay.saturating_sub(started.elapsed())).await;
                Err(EnrolmentRefusal::NotAccepted)
            }
        }
    }

    async fn try_start(
        &self,
        username: &str,
        password: &Sensitive<String>,
        code: &Sensitive<String>,
    ) -> Result<StartedEnrolment, Refused> {
        self.require_clock("start an enrolment").map_err(Refused::Service)?;
        let username = super::normalize(username).map_err(|_| Refused::Person)?;
        let Some(user) = self.store.user_by_username(&username).await.map_err(service)? else {
            return Err(Refused::Person);
        };
        // A code that cannot be one is a typing mistake, not a guess: refused, not counted.
        let Some(canonical) = parse_registration_code(code.expose()) else {
            return Err(Refused::Code);
        };
        // One start per person at a time here, so a burst of tries is counted try by try.
        let Some(_guard) = InFlight::enter(&self.enrolments_in_flight, &user.id) else {
            return Err(Refused::Code);
        };
        let now = self.now();
        // The code first: the directory is asked only for someone holding the person's code,
        // so this is neither a way to test passwords nor to lock the account in the directory.
        let code_id = match self
            .store
            .check_registration_code(&user.id, &registration_code_hash(&user.id, &canonical), now)
            .await
            .map_err(service)?
        {
            CodeCheck::Valid { code_id } => code_id,
            CodeCheck::Wrong { .. } | CodeCheck::NoLiveCode => return Err(Refused::Code),
        };
        let person = match self.directory.authenticate(&username, password).await {
            Ok(person) => person,
            Err(rampart_directory::DirectoryError::Unavailable(e)) => {
                return Err(Refused::Service(ServiceError::Unavailable(format!(
                    "directory unavailable: {e}"
                ))));
            }
            Err(_) => {
                self.store
                    .fail_registration_code(&user.id, now)
                    .await
                    .map_err(service)?;
                return Err(Refused::Password);
            }
        };
        if person.stable_id != user.id {
            // The name now belongs to someone else in the directory.
            return Err(Refused::Person);
        }
        self.fresh_keys().await.map_err(Refused::Service)?;
        let mut seed = Zeroizing::new([0u8; SEED_LEN]);
        fill(&mut *seed).map_err(Refused::Service)?;
        let token_id = random_hex(16).map_err(Refused::Service)?;
        let params = TotpParams::default();
        let sealed = self
            .keys
            .seal(&token_id, &*seed)
            .map_err(|e| Refused::Service(ServiceError::Unavailable(e.to_string())))?;
        let uri = Zeroizing::new(
            otpauth_uri(&*seed, &params, &self.settings.issuer, &user.username).map_err(|e| {
                Refused::Service(ServiceError::Unavailable(format!("cannot build the otpauth URI: {e}")))
            })?,
        );
        let secret = Zeroizing::new(secret_base32(&*seed));
        drop(seed);
        let enrolment = Enrolment {
            id: random_hex(16).map_err(Refused::Service)?,
            user_id: user.id.clone(),
            registration_code: code_id,
            token_id,
            params,
            sealed,
            created_at: now,
            expires_at: now + i64::from(self.settings.enrolment_minutes) * 60,
            failures: 0,
        };
        self.store.start_enrolment(&enrolment).await.map_err(service)?;
        Ok(StartedEnrolment {
            enrolment_id: enrolment.id,
            username: user.username,
            otpauth_uri: uri.to_string(),
            secret: secret.to_string(),
            issuer: self.settings.issuer.clone(),
            confirm_before: enrolment.expires_at,
            qr_svg: crate::qr::svg(&uri).ok(),
            qr_text: crate::qr::terminal(&uri).ok(),
        })
    }

    /// Confirms an enrolment with the first code of the new authenticator: the token becomes
    /// the person's active one (replacing their earlier token) and the code is used.
    pub async fn confirm_enrolment(
        &self,
        username: &str,
        enrolment_id: &str,
        otp: &Sensitive<String>,
        source: Option<SocketAddr>,
    ) -> Result<ConfirmedEnrolment, EnrolmentRefusal> {
        let result = self.try_confirm(username, enrolment_id, otp).await;
        let (outcome, reason) = match &result {
            Ok(_) => (Status::Success, "enrolled"),
            Err(EnrolmentRefusal::WrongCode { .. }) => (Status::Failure, "wrong_code"),
            Err(EnrolmentRefusal::Gone | EnrolmentRefusal::NotAccepted) => (Status::Failure, "gone"),
            Err(EnrolmentRefusal::Wait { .. }) => (Status::Failure, "rate_limited"),
            Err(EnrolmentRefusal::Service(_)) => (Status::Failure, "unavailable"),
        };
        let known = self.known_name(username).await;
        self.audit_enrolment(&known, "enrolment confirm", outcome, reason, source);
        result
    }

    async fn try_confirm(
        &self,
        username: &str,
        enrolment_id: &str,
        otp: &Sensitive<String>,
    ) -> Result<ConfirmedEnrolment, EnrolmentRefusal> {
        self.require_clock("confirm an enrolment")?;
        let username = super::normalize(username).map_err(|_| EnrolmentRefusal::Gone)?;
        let user = self
            .store
            .user_by_username(&username)
            .await
            .map_err(ServiceError::from)?
            .ok_or(EnrolmentRefusal::Gone)?;
        let now = self.now();
        let enrolment = self
            .store
            .enrolment(enrolment_id)
            .await
            .map_err(ServiceError::from)?
            .filter(|e| e.user_id == user.id && e.expires_at > now)
            .ok_or(EnrolmentRefusal::Gone)?;
        // One try at a time per enrolment here, so a burst of guesses is counted guess by guess.
        let Some(_guard) = InFlight::enter(&self.enrolments_in_flight, &format!("confirm:{}", enrolment.id)) else {
            return Err(EnrolmentRefusal::Service(ServiceError::Unavailable(
                "this enrolment is being confirmed already; try again in a moment".into(),
            )));
        };
        self.fresh_keys().await?;
        // A key retired since the start cannot open the seed: the person starts again.
        let Ok(seed) = self.keys.open(&enrolment.token_id, &enrolment.sealed) else {
            return Err(EnrolmentRefusal::Gone);
        };
        let code: String = otp.expose().chars().filter(|c| !c.is_whitespace()).collect();
        let verified = verify_totp(&seed, &code, &enrolment.params, u64::try_from(now).unwrap_or(0), None);
        // Sealed again under the current key, so a rotation since the start leaves nothing
        // behind on a retiring key.
        let resealed = self.keys.seal(&enrolment.token_id, &seed);
        drop(seed);
        let Ok(step) = verified else {
            return match self
                .store
                .fail_enrolment(&enrolment.id, now)
                .await
                .map_err(ServiceError::from)?
            {
                Some(tries_left) if tries_left > 0 => Err(EnrolmentRefusal::WrongCode { tries_left }),
                _ => Err(EnrolmentRefusal::Gone),
            };
        };
        let confirmed = Confirmed {
            step,
            sealed: resealed.map_err(|e| ServiceError::Unavailable(e.to_string()))?,
            // With dual control on, a live token is replaced only with a second operator's
            // approval: a self-service enrolment then cannot replace one.
            mode: if self.resets_need_approval() {
                IssueMode::New
            } else {
                IssueMode::Replace
            },
        };
        let replaced = match self
            .store
            .confirm_enrolment(&enrolment.id, &user, &confirmed, now)
            .await
            .map_err(ServiceError::from)?
        {
            Confirmation::Confirmed { replaced } => replaced,
            Confirmation::Gone => return Err(EnrolmentRefusal::Gone),
        };
        token_change(
            &self.audit,
            "self-service",
            Activity::MFA_ENABLE,
            "enrolled",
            (&user.username, &user.id),
            Some(&enrolment.token_id),
            replaced.as_deref().map_or("", |old| old),
        );
        Ok(ConfirmedEnrolment {
            username: user.username,
            token_id: enrolment.token_id,
            replaced,
        })
    }

    /// The name to put on the audit trail for what someone typed as a username: the person's
    /// username when the store knows them, else a marker — a password typed into the wrong
    /// field must not end up on the trail.
    pub(super) async fn known_name(&self, typed: &str) -> String {
        let found = match super::normalize(typed) {
            Ok(name) => self.store.user_by_username(&name).await.ok().flatten(),
            Err(_) => None,
        };
        found.map_or_else(|| "(not a known person)".to_owned(), |user| user.username)
    }

    /// One Authentication record for a start or a confirmation, with the real reason.
    fn audit_enrolment(&self, username: &str, message: &str, status: Status, reason: &str, source: Option<SocketAddr>) {
        let mut event = AuditEvent::new(Class::Authentication, Activity::OTHER, self.now_ms(), status, message)
            .actor(Actor::operator("self-service"))
            .user(User::named(username))
            .detail(reason);
        if let Some(addr) = source {
            event = event.source(addr);
        }
        self.audit.record(event);
    }
}

/// A person's start in progress on this provisioner; leaving removes the mark.
struct InFlight<'a> {
    set: &'a std::sync::Mutex<std::collections::HashSet<String>>,
    user_id: String,
}

impl<'a> InFlight<'a> {
    /// Marks `user_id` as starting; `None` when a start for them is already in progress.
    fn enter(set: &'a std::sync::Mutex<std::collections::HashSet<String>>, user_id: &str) -> Option<Self> {
        let mut marks = set.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        marks.insert(user_id.to_owned()).then(|| Self {
            set,
            user_id: user_id.to_owned(),
        })
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut marks = self.set.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        marks.remove(&self.user_id);
    }
}

/// Why a start was refused, for the audit trail; the person hears [`EnrolmentRefusal::NotAccepted`].
enum Refused {
    Person,
    Password,
    Code,
    Service(ServiceError),
}

fn service(e: rampart_store::StoreError) -> Refused {
    Refused::Service(e.into())
}

fn fill(buf: &mut [u8]) -> Result<(), ServiceError> {
    SystemRandom::new()
        .fill(buf)
        .map_err(|_| ServiceError::Unavailable("the system random generator failed".into()))
}
