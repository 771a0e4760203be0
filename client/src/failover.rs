//! Fail-over: the one loop that tries a person's gateways in turn until one answers, used by
//! every command that connects and by the session's tunnel when it reconnects. A gateway that
//! cannot be reached (and, when reconnecting, one that is busy for now) is passed over for the
//! next; any other answer — an untrusted certificate, a refusal, a local problem — stops the
//! search, since another gateway would say the same. A reconnect goes round the gateways several
//! times with growing waits and, after a lost link, tries a gateway that went silent last and one
//! that closed the link (likely restarting) first.

use crate::ClientError;
use rampart_core::ErrorCode;
use std::time::Duration;

/// Waits before each round of a reconnect over every gateway (about 15 s in all).
const BACKOFF_MS: [u64; 6] = [0, 250, 500, 1_000, 3_000, 10_000];
/// A single pass over the gateways, at once.
const SINGLE_PASS_MS: [u64; 1] = [0];
/// Longest wait a busy gateway may ask for between rounds.
const MAX_BUSY_WAIT: Duration = Duration::from_secs(30);

/// The gateway a link was on when it was lost, and how it was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lost {
    /// Its index in the order the gateways are tried.
    pub index: usize,
    /// Whether it went silent (likely dead) rather than closing or resetting the link (likely
    /// restarting).
    pub went_silent: bool,
}

/// Which failures pass over to the next gateway; any other stops the search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassOver {
    /// Only a gateway that cannot be reached (no answer, or the connection lost).
    Unreachable,
    /// Also one that is busy or asks to try later.
    Unavailable,
}

impl PassOver {
    /// Whether another attempt (later, or at another gateway) may succeed after `error`.
    pub fn passes(self, error: &ClientError) -> bool {
        match self {
            Self::Unreachable => error.is_connection_failure(),
            Self::Unavailable => {
                error.is_connection_failure()
                    || matches!(error, ClientError::Busy { .. })
                    || matches!(
                        error,
                        ClientError::Refused {
                            code: ErrorCode::TryLater,
                            ..
                        }
                    )
            }
        }
    }
}

/// How the gateways are tried: how many rounds with which waits, in which order, and which
/// failures pass over to the next gateway.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    waits_ms: &'static [u64],
    lost: Option<Lost>,
    pass_over: PassOver,
}

impl Plan {
    /// One pass in the given order, without waiting, passing over only gateways that cannot be
    /// reached: a command the person started and is watching.
    pub fn single_pass() -> Self {
        Self {
            waits_ms: &SINGLE_PASS_MS,
            lost: None,
            pass_over: PassOver::Unreachable,
        }
    }

    /// Rounds over every gateway with growing waits (about 15 s in all), passing over busy
    /// gateways too, after the link on `lost` was lost (`None`: the first connection).
    pub fn reconnect(lost: Option<Lost>) -> Self {
        Self {
            waits_ms: &BACKOFF_MS,
            lost,
            pass_over: PassOver::Unavailable,
        }
    }

    /// The gateway this plan tries first, of `count`.
    pub fn first(&self, count: usize) -> usize {
        attempt_order(count, self.lost, 0).first().copied().unwrap_or(0)
    }
}

/// One attempt at one gateway: connecting, and for a session's tunnel resuming it there too.
pub trait Attempt {
    /// What a successful attempt makes.
    type Made;

    /// Tries `gateway` (`HOST:PORT`).
    fn attempt<'s>(&'s mut self, gateway: &'s str)
    -> impl Future<Output = Result<Self::Made, ClientError>> + Send + 's;
}

/// Why no gateway was reached.
#[derive(Debug)]
pub enum Failed {
    /// An answer another gateway would repeat (an untrusted certificate, a refusal, a local
    /// problem): the search stopped at it.
    Stopped(ClientError),
    /// Every gateway was tried in every round: the last failure, or `None` when there was no
    /// gateway to try.
    Exhausted(Option<ClientError>),
}

impl Failed {
    /// The error to report; `nothing_tried` when there was no gateway at all.
    pub fn into_error(self, nothing_tried: impl FnOnce() -> ClientError) -> ClientError {
        match self {
            Self::Stopped(error) | Self::Exhausted(Some(error)) => error,
            Self::Exhausted(None) => nothing_tried(),
        }
    }
}

/// Tries `attempt` on `gateways` as `plan` says until one succeeds; returns its index in
/// `gateways` and what the attempt made. Before each round it waits the plan's backoff, or as
/// long as the last busy gateway asked (at most [`MAX_BUSY_WAIT`]) if longer.
pub async fn first_answering<A: Attempt>(
    gateways: &[String],
    plan: &Plan,
    attempt: &mut A,
) -> Result<(usize, A::Made), Failed> {
    let mut last: Option<ClientError> = None;
    for (round, delay_ms) in plan.waits_ms.iter().enumerate() {
        let busy_wait = match &last {
            Some(ClientError::Busy { retry_after_secs }) => {
                Duration::from_secs(u64::from(*retry_after_secs)).min(MAX_BUSY_WAIT)
            }
            _ => Duration::ZERO,
        };
        let wait = Duration::from_millis(*delay_ms).max(busy_wait);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        for index in attempt_order(gateways.len(), plan.lost, round) {
            let Some(gateway) = gateways.get(index) else {
                continue;
            };
            match attempt.attempt(gateway).await {
                Ok(made) => return Ok((index, made)),
                Err(e) if plan.pass_over.passes(&e) => {
                    tracing::debug!(gateway = %gateway, error = %e, "gateway not available");
                    last = Some(e);
                }
                Err(e) => return Err(Failed::Stopped(e)),
            }
        }
    }
    Err(Failed::Exhausted(last))
}

/// The gateways (indexes into the order tried) to try in round `round` of `n`, after the link
/// on gateway `lost` was lost, or at start (`None`). A gateway that went silent is likely dead
/// (killed, or its host lost): the others come first, and it is left out of the first round,
/// where its handshake could only time out. One that closed or reset the link is likely
/// restarting: it comes first, so people stay on their own gateway.
fn attempt_order(n: usize, lost: Option<Lost>, round: usize) -> Vec<usize> {
    let (first, skip) = match lost {
        Some(Lost {
            index,
            went_silent: true,
        }) if n > 1 => ((index + 1) % n, (round == 0).then_some(index)),
        Some(Lost { index, .. }) => (index % n.max(1), None),
        None => (0, None),
    };
    (0..n).map(|k| (first + k) % n).filter(|i| Some(*i) != skip).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn lost(index: usize, went_silent: bool) -> Option<Lost> {
        Some(Lost { index, went_silent })
    }

    #[test]
    fn a_silent_gateway_goes_last_and_a_closing_one_first() {
        // At start: the session's gateway, then the person's order.
        assert_eq!(attempt_order(3, None, 0), vec![0, 1, 2]);
        // Gateway 1 closed or reset the link (a restart): it is tried again first.
        assert_eq!(attempt_order(3, lost(1, false), 0), vec![1, 2, 0]);
        // Gateway 1 went silent (killed): the next ones first, it only from the second round.
        assert_eq!(attempt_order(3, lost(1, true), 0), vec![2, 0]);
        assert_eq!(attempt_order(3, lost(1, true), 1), vec![2, 0, 1]);
        assert_eq!(attempt_order(2, lost(1, true), 0), vec![0]);
        // With one gateway there is nowhere else to go.
        assert_eq!(attempt_order(1, lost(0, true), 0), vec![0]);
        assert_eq!(attempt_order(1, lost(0, false), 3), vec![0]);
        assert_eq!(Plan::reconnect(lost(1, true)).first(3), 2);
        assert_eq!(Plan::single_pass().first(0), 0);
    }

    fn no_answer(gateway: &str) -> ClientError {
        ClientError::Unreachable {
            gateway: gateway.to_owned(),
            reason: "no answer".into(),
        }
    }

    /// Answers from a script: each gateway's outcome, and the gateways tried, in order.
    struct Scripted {
        outcome: fn(&str) -> Result<usize, ClientError>,
        tried: Vec<String>,
    }

    impl Attempt for Scripted {
        type Made = usize;

        fn attempt<'s>(&'s mut self, gateway: &'s str) -> impl Future<Output = Result<usize, ClientError>> + Send + 's {
            self.tried.push(gateway.to_owned());
            std::future::ready((self.outcome)(gateway))
        }
    }

    #[tokio::test]
    async fn a_single_pass_passes_over_the_unreachable_and_stops_at_anything_else() {
        let gateways: Vec<String> = ["a:1", "b:1", "c:1"].map(str::to_owned).to_vec();
        let mut third = Scripted {
            outcome: |gateway| match gateway {
                "c:1" => Ok(3),
                other => Err(no_answer(other)),
            },
            tried: Vec::new(),
        };
        let found = first_answering(&gateways, &Plan::single_pass(), &mut third).await;
        assert_eq!(found.unwrap(), (2, 3));
        assert_eq!(third.tried, gateways);

        let mut busy = Scripted {
            outcome: |_| Err(ClientError::Busy { retry_after_secs: 1 }),
            tried: Vec::new(),
        };
        let stopped = first_answering(&gateways, &Plan::single_pass(), &mut busy).await;
        assert!(matches!(stopped, Err(Failed::Stopped(ClientError::Busy { .. }))));
        assert_eq!(busy.tried, ["a:1"]);

        let mut none = Scripted {
            outcome: |gateway| Err(no_answer(gateway)),
            tried: Vec::new(),
        };
        let exhausted = first_answering(&gateways, &Plan::single_pass(), &mut none).await;
        let Err(Failed::Exhausted(Some(ClientError::Unreachable { gateway, .. }))) = exhausted else {
            unreachable!("{exhausted:?}")
        };
        assert_eq!(gateway, "c:1");
        let empty = first_answering(&[], &Plan::single_pass(), &mut none).await;
        assert!(matches!(empty, Err(Failed::Exhausted(None))));
    }

    #[test]
    fn a_reconnect_also_passes_over_a_busy_gateway() {
        let busy = ClientError::Busy { retry_after_secs: 3 };
        let later = ClientError::Refused {
            code: ErrorCode::TryLater,
            message: String::new(),
        };
        let denied = ClientError::Refused {
            code: ErrorCode::SessionExpired,
            message: String::new(),
        };
        assert!(PassOver::Unavailable.passes(&busy));
        assert!(PassOver::Unavailable.passes(&later));
        assert!(PassOver::Unavailable.passes(&no_answer("a:1")));
        assert!(!PassOver::Unavailable.passes(&denied));
        assert!(!PassOver::Unreachable.passes(&busy));
        assert!(PassOver::Unreachable.passes(&no_answer("a:1")));
    }
}
