//! `rampart-connect login` and a login's way to the gateway's answer: a connection made before
//! anything is asked, so an unreachable or untrusted gateway costs no password typed and no code
//! spent; renewed without a word when the prompts took longer than a gateway waits for a login;
//! and a busy gateway waited out with a countdown (Ctrl-C stops it), retrying with the code
//! already typed while that code is still good, and asking for a new one only after. The session
//! granted is saved in the home folder for every later command.

use crate::error::exit;
use crate::gateway::connect_any;
use crate::known::{Known, Overrides};
use crate::messages::{Context, Failure};
use crate::prompt::{ask_code, prompt, read_password};
use crate::show::{local_time, print_resources};
use crate::{ClientError, GatewayClient, Home, SavedSession};
use rampart_core::protocol::SessionGrant;
use rampart_core::secret::Sensitive;
use rampart_core::text::printable;
use std::io::{IsTerminal, Write};
use std::pin::Pin;
use std::time::{Duration, Instant};

/// A connection older than this is replaced before a login is sent on it: gateways close a
/// connection that has not logged in after `login_deadline_secs` (15 s by default).
const FRESH_FOR: Duration = Duration::from_secs(10);
/// Longest time spent waiting out a busy gateway before giving up.
pub const MAX_BUSY_WAIT: Duration = Duration::from_secs(600);
/// Longest single wait, whatever the gateway asks.
const MAX_RETRY_SECS: u32 = 60;
/// The code step codes are assumed to have (authenticator apps and Rampart's tokens: 30 s).
const CODE_STEP_SECS: i64 = 30;
/// How far behind the gateway's clock a phone may be while its code is still reused.
const PHONE_SLACK_SECS: i64 = 5;
/// Time left for the retry to reach the gateway.
const SEND_MARGIN_SECS: i64 = 3;

/// What a person reads when they stop the wait.
pub const STOPPED: &str = "Stopped while the gateway was busy; no code was used. Run `rampart-connect login` \
                           again when you are ready.";

/// What `login` was given on the command line.
#[derive(Debug, Default)]
pub struct Request {
    /// The username (default: the profile's, else asked).
    pub user: Option<String>,
    /// The current code (asked for if omitted).
    pub otp: Option<String>,
    /// Read the password from standard input.
    pub password_stdin: bool,
}

/// Logs in: the gateway first, then the password and code, and the granted session saved for
/// the other commands; the exit code. A refusal carries the clocks and whether this home ever
/// logged in, for its explanation.
pub async fn run(home: &Home, overrides: &Overrides, request: Request) -> Result<u8, Failure> {
    let known = Known::resolve(overrides, home)?;
    let profile = home.load_profile()?;
    let user = match request.user.or_else(|| profile.as_ref().and_then(|p| p.user.clone())) {
        Some(user) => user,
        None => prompt("Username: ")?,
    };
    // A gateway that answers and proves it is the organisation's before anything is asked: on
    // a bad network no code is typed, and spent, for nothing.
    let mut link = Link::open(known.order(Some(&user)), known.ca_pem.clone()).await?;
    let password = read_password(request.password_stdin)?;
    let (otp, ask) = match request.otp {
        Some(code) => (Sensitive::new(code), None),
        None => (Sensitive::new(ask_code()?), Some(ask_code as fn() -> _)),
    };
    let code = TypedCode::new(otp, link.gateway_now());
    let grant = link.login(&user, &password, code, ask).await;
    link.close().await;
    // The clocks are named once, with a refused code, where they may matter.
    let context = Context {
        clock_offset: Some(link.clock_offset()),
        first_login: !home.logged_in_before(),
        ..Context::default()
    };
    let grant = grant.map_err(|error| Failure { error, context })?;
    let gateway = link.gateway().to_owned();
    let credential = link
        .client()
        .credential()
        .ok_or_else(|| ClientError::Protocol("no session ticket in the answer".into()))?;
    let _lock = home.lock_session().await?;
    home.save_session(&SavedSession {
        gateway: gateway.clone(),
        gateways: known.all(),
        ca_pem: known.ca_pem.clone(),
        user: grant.user.clone(),
        session_id: grant.session_id.clone(),
        ticket: credential.ticket,
        key: Some(credential.key),
        expires_at: grant.expires_at,
        resources: grant.resources.clone(),
    })?;
    let _ = home.mark_logged_in();
    println!(
        "Logged in as {} until {} (through {gateway}).",
        printable(&grant.user),
        local_time(grant.expires_at)
    );
    print_resources(&grant.resources);
    Ok(exit::OK)
}

/// The connection a login goes over, to the first of the person's gateways that answers.
#[derive(Debug)]
pub struct Link {
    order: Vec<String>,
    ca_pem: String,
    gateway: String,
    client: GatewayClient,
    since: Instant,
    /// This computer's clock when the gateway said its time, unix seconds.
    local_at_connect: i64,
}

impl Link {
    /// Connects to the first of `order` that answers and is trusted: the check made before
    /// the person is asked for anything.
    pub async fn open(order: Vec<String>, ca_pem: String) -> Result<Self, ClientError> {
        let (gateway, client) = connect_any(&order, &ca_pem).await?;
        Ok(Self {
            order,
            ca_pem,
            gateway,
            client,
            since: Instant::now(),
            local_at_connect: local_unix_now(),
        })
    }

    /// The gateway this link is on.
    pub fn gateway(&self) -> &str {
        &self.gateway
    }

    /// The connection.
    pub fn client(&self) -> &GatewayClient {
        &self.client
    }

    /// The gateway's clock now, unix seconds: its time at connection plus the time since.
    pub fn gateway_now(&self) -> i64 {
        let since = i64::try_from(self.since.elapsed().as_secs()).unwrap_or(i64::MAX);
        self.client.server_time().saturating_add(since)
    }

    /// The gateway's clock minus this computer's, seconds, as of the connection.
    pub fn clock_offset(&self) -> i64 {
        self.client.server_time().saturating_sub(self.local_at_connect)
    }

    /// Replaces the connection if it closed or is old enough for the gateway's login deadline
    /// to close it under the login.
    async fn keep_fresh(&mut self) -> Result<(), ClientError> {
        if self.client.is_open() && self.since.elapsed() < FRESH_FOR {
            return Ok(());
        }
        self.renew().await
    }

    async fn renew(&mut self) -> Result<(), ClientError> {
        let (gateway, client) = connect_any(&self.order, &self.ca_pem).await?;
        let old = std::mem::replace(&mut self.client, client);
        old.abandon();
        self.gateway = gateway;
        self.since = Instant::now();
        self.local_at_connect = local_unix_now();
        Ok(())
    }

    /// Logs in as `user`, waiting out a busy gateway (at most [`MAX_BUSY_WAIT`]) with a
    /// countdown on standard error. The same code is sent again while [`code_still_good`]; then
    /// `ask_code` (a prompt at a terminal) gives a new one, or without it the busy answer stands.
    pub async fn login(
        &mut self,
        user: &str,
        password: &Sensitive<String>,
        mut code: TypedCode,
        ask_code: Option<fn() -> Result<String, ClientError>>,
    ) -> Result<SessionGrant, ClientError> {
        let terminal = std::io::stderr().is_terminal();
        let mut busy_since: Option<Instant> = None;
        let mut renewed_after_deadline = false;
        // One Ctrl-C listener for the whole wait, so a Ctrl-C pressed while a retry is on its
        // way is still seen (it starts listening at the first countdown).
        let interrupted = tokio::signal::ctrl_c();
        tokio::pin!(interrupted);
        let outcome = loop {
            if let Err(e) = self.keep_fresh().await {
                break Err(e);
            }
            match self.client.login(user, password.clone(), code.code.clone()).await {
                Err(ClientError::Busy { retry_after_secs }) => {
                    let since = *busy_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= MAX_BUSY_WAIT {
                        break Err(ClientError::Busy { retry_after_secs });
                    }
                    let wait = with_jitter(retry_after_secs);
                    if let Err(e) = countdown(wait, since.elapsed(), terminal, interrupted.as_mut()).await {
                        break Err(e);
                    }
                    if !code_still_good(code.typed_at_gateway, self.gateway_now()) {
                        let Some(ask) = ask_code.filter(|_| std::io::stdin().is_terminal()) else {
                            break Err(ClientError::Busy { retry_after_secs });
                        };
                        if terminal {
                            eprintln!();
                        }
                        eprintln!("The code you typed is too old now. Type the one your authenticator app shows now.");
                        match ask_interruptibly(ask, interrupted.as_mut()).await {
                            Ok(new) => code = TypedCode::new(Sensitive::new(new), self.gateway_now()),
                            Err(e) => break Err(e),
                        }
                    }
                }
                // The gateway closed the connection before reading the login (its deadline is
                // shorter than this side assumed): nothing was checked, so send it again once.
                Err(e) if e.is_connection_failure() && self.client.closed_by_login_deadline() => {
                    if renewed_after_deadline {
                        break Err(e);
                    }
                    renewed_after_deadline = true;
                    if let Err(e) = self.renew().await {
                        break Err(e);
                    }
                }
                other => break other,
            }
        };
        if terminal && busy_since.is_some() {
            // Ends the countdown's line.
            eprintln!();
        }
        outcome
    }

    /// Closes the connection, waiting briefly for the gateway to hear it.
    pub async fn close(&self) {
        self.client.close().await;
    }
}

fn local_unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A code as typed, and when by the gateway's clock.
#[derive(Debug)]
pub struct TypedCode {
    code: Sensitive<String>,
    typed_at_gateway: i64,
}

impl TypedCode {
    /// `code`, typed (or given) at `typed_at_gateway`, the gateway's unix time.
    pub fn new(code: Sensitive<String>, typed_at_gateway: i64) -> Self {
        Self { code, typed_at_gateway }
    }
}

/// Whether a code typed at `typed_at` (the gateway's clock) may be sent again at `now`.
///
/// A gateway accepts the code of the current step and, by default, of the steps next to it, so
/// a code stays good until the end of the step after its own. Its own step is taken as the one
/// [`PHONE_SLACK_SECS`] before the typing (a phone a little behind, or a code read a moment
/// before it changed), and [`SEND_MARGIN_SECS`] are left for the retry to arrive: between 23
/// and 52 seconds after typing. A code sent too late would count as a wrong one against the
/// token, so the estimate errs short; after it the person types a new code.
pub fn code_still_good(typed_at: i64, now: i64) -> bool {
    let step = typed_at.saturating_sub(PHONE_SLACK_SECS).div_euclid(CODE_STEP_SECS);
    let good_until = step
        .saturating_add(2)
        .saturating_mul(CODE_STEP_SECS)
        .saturating_sub(SEND_MARGIN_SECS);
    now < good_until
}

/// The countdown line: how long until the next try, how long waited so far.
pub fn countdown_line(left_secs: u32, waited: Duration) -> String {
    let waited = crate::messages::duration_words(i64::try_from(waited.as_secs()).unwrap_or(i64::MAX));
    format!(
        "The gateway is busy (many people are logging in): trying again in {left_secs} s with the same code \
         (waited {waited}; Ctrl-C to stop)."
    )
}

/// The gateway's suggested wait, bounded, with up to a quarter more at random (to the
/// millisecond) so that people told the same number do not all come back at the same moment —
/// a thousand people told "1 s" come back over a quarter of a second, not in one burst.
fn with_jitter(retry_after_secs: u32) -> Duration {
    let base = retry_after_secs.clamp(1, MAX_RETRY_SECS);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let spread_ms = base * 250 + 1;
    Duration::from_secs(u64::from(base)) + Duration::from_millis(u64::from(nanos % spread_ms))
}

/// Waits `wait`, showing the time left in whole seconds: at a terminal one line updated in place
/// each second, otherwise one plain line per wait. Ctrl-C ends the wait with [`STOPPED`].
async fn countdown(
    wait: Duration,
    waited: Duration,
    terminal: bool,
    mut interrupted: Pin<&mut impl Future<Output = std::io::Result<()>>>,
) -> Result<(), ClientError> {
    let stopped = || ClientError::Local(STOPPED.to_owned());
    let secs = u32::try_from(wait.as_secs()).unwrap_or(u32::MAX);
    if !terminal {
        eprintln!("{}", countdown_line(secs, waited));
        return tokio::select! {
            () = tokio::time::sleep(wait) => Ok(()),
            _ = &mut interrupted => Err(stopped()),
        };
    }
    // The part of a second first, then the whole seconds counted down.
    let fraction = wait.saturating_sub(Duration::from_secs(u64::from(secs)));
    for (step, left) in (1..=secs).rev().enumerate() {
        let waited = waited + Duration::from_secs(u64::from(secs - left));
        eprint!("\r\x1b[K{}", countdown_line(left, waited));
        let _ = std::io::stderr().flush();
        let tick = if step == 0 {
            Duration::from_secs(1) + fraction
        } else {
            Duration::from_secs(1)
        };
        tokio::select! {
            () = tokio::time::sleep(tick) => {}
            _ = &mut interrupted => {
                eprintln!();
                return Err(stopped());
            }
        }
    }
    Ok(())
}

/// Asks with `ask` (a blocking prompt) while Ctrl-C still stops: once the countdown has
/// listened for Ctrl-C, the signal no longer ends the process by itself.
async fn ask_interruptibly(
    ask: fn() -> Result<String, ClientError>,
    interrupted: Pin<&mut impl Future<Output = std::io::Result<()>>>,
) -> Result<String, ClientError> {
    let asked = tokio::task::spawn_blocking(ask);
    tokio::select! {
        answer = asked => answer.map_err(|e| ClientError::Local(format!("cannot read the code: {e}")))?,
        _ = interrupted => {
            eprintln!();
            eprintln!("{STOPPED}");
            // The blocked read of the terminal cannot be cancelled, and the runtime would wait
            // for it at shutdown: end the process here. Nothing is half-written at this point.
            std::process::exit(i32::from(exit::FAILURE));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_reused_only_while_the_gateway_still_takes_it() {
        // Typed at the start of a step: good until near the end of the next one.
        let start = 1_800_000_010; // 10 s into a step (1_800_000_000 is a multiple of 30)
        assert!(code_still_good(start, start + 20));
        assert!(code_still_good(start, start + 46));
        assert!(!code_still_good(start, start + 47));
        // Typed just before the step changed: the shortest life, still over 20 s.
        let late = 1_800_000_003;
        assert!(code_still_good(late, late + 23));
        assert!(!code_still_good(late, late + 24));
        // Never longer than two steps.
        for typed in 1_800_000_000..1_800_000_030 {
            assert!(!code_still_good(typed, typed + 57), "{typed}");
            assert!(code_still_good(typed, typed + 21), "{typed}");
        }
    }

    #[test]
    fn the_countdown_says_how_long_and_how_to_stop() {
        let line = countdown_line(7, Duration::from_secs(75));
        assert!(line.contains("trying again in 7 s"), "{line}");
        assert!(line.contains("waited 1 min 15 s"), "{line}");
        assert!(line.contains("Ctrl-C to stop"), "{line}");
    }

    #[test]
    fn waits_are_bounded_and_spread() {
        for asked in [0, 1, 5, 60, 600] {
            let wait = with_jitter(asked);
            let base = Duration::from_secs(u64::from(asked.clamp(1, MAX_RETRY_SECS)));
            assert!((base..=base + base / 4).contains(&wait), "{asked} -> {wait:?}");
        }
    }
}
