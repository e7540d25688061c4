//! Rate limits: the `limit` obligations of a decision, enforced per key with GCRA (governor).
//!
//! A limiter exists per `limit` declaration, keyed by the obligation's key values. A request whose
//! obligations include one that is exhausted is answered 429 with `Retry-After` and the
//! `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` headers; an allowed request
//! carries the same headers for the tightest of its limits. Limiter state lives in memory, per
//! process; it survives policy reloads for limits whose name, count and period are unchanged.
//! Replicas that must share their counts keep them in Redis instead (`shared_limits.rs`).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::shared_limits::Declared;

type Limiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// One limit's counters.
pub struct LimitState {
    count: u64,
    period_seconds: u64,
    burst: u64,
    limiter: Limiter,
}

/// All limiters, by limit name.
#[derive(Default)]
pub struct Limiters {
    by_name: HashMap<String, Arc<LimitState>>,
}

/// One obligation to enforce: which limit, which key.
pub struct Obligation<'a> {
    /// The limit's name.
    pub limit: &'a str,
    /// The key, rendered.
    pub key: &'a str,
}

/// The state of the tightest limit a request met.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the request may pass.
    pub allowed: bool,
    /// The limit's name.
    pub limit: String,
    /// Requests per period.
    pub count: u64,
    /// Requests left now.
    pub remaining: u64,
    /// Seconds until a request would be allowed again (0 when allowed).
    pub retry_after: u64,
    /// Seconds until the window is full again.
    pub reset: u64,
}

impl Limiters {
    /// Limiters for `limits`, keeping the state of unchanged ones (same name, count, period and
    /// burst) from `previous`.
    pub fn new(limits: &[Declared<'_>], previous: Option<&Limiters>) -> Limiters {
        let mut by_name = HashMap::new();
        for limit in limits {
            let kept = previous
                .and_then(|previous| previous.by_name.get(limit.name))
                .filter(|state| {
                    state.count == limit.count
                        && state.period_seconds == limit.period_seconds
                        && state.burst == limit.burst
                });
            let state = match kept {
                Some(state) => state.clone(),
                None => Arc::new(LimitState {
                    count: limit.count,
                    period_seconds: limit.period_seconds,
                    burst: limit.burst,
                    limiter: RateLimiter::keyed(quota(
                        limit.count,
                        limit.period_seconds,
                        limit.burst,
                    ))
                    .with_middleware::<StateInformationMiddleware>(),
                }),
            };
            by_name.insert(limit.name.to_string(), state);
        }
        Limiters { by_name }
    }

    /// Counts the request against every obligation; the verdict of the tightest (a denial first),
    /// or `None` when there is no obligation.
    pub fn check(&self, obligations: &[Obligation<'_>]) -> Option<Verdict> {
        let clock = DefaultClock::default();
        let mut tightest: Option<Verdict> = None;
        for obligation in obligations {
            let Some(state) = self.by_name.get(obligation.limit) else {
                continue;
            };
            let key = obligation.key.to_string();
            let reset = state.period_seconds;
            let verdict = match state.limiter.check_key(&key) {
                Ok(snapshot) => Verdict {
                    allowed: true,
                    limit: obligation.limit.to_string(),
                    count: state.count,
                    remaining: u64::from(snapshot.remaining_burst_capacity()),
                    retry_after: 0,
                    reset,
                },
                Err(not_until) => {
                    let wait = not_until.wait_time_from(clock.now());
                    Verdict {
                        allowed: false,
                        limit: obligation.limit.to_string(),
                        count: state.count,
                        remaining: 0,
                        retry_after: seconds_up(wait),
                        reset,
                    }
                }
            };
            if tighter(&verdict, tightest.as_ref()) {
                tightest = Some(verdict);
            }
        }
        tightest
    }

    /// Forgets keys that have been idle for a full period, bounding memory.
    pub fn retain_recent(&self) {
        for state in self.by_name.values() {
            state.limiter.retain_recent();
        }
    }
}

/// Whether `verdict` is tighter than `current`: a denial before an allowance, then fewer requests
/// left.
pub fn tighter(verdict: &Verdict, current: Option<&Verdict>) -> bool {
    match current {
        None => true,
        Some(current) => {
            (!verdict.allowed && current.allowed)
                || (verdict.allowed == current.allowed && verdict.remaining < current.remaining)
        }
    }
}

/// `count` requests per `period_seconds`, refilled evenly over the period (one every
/// `period / count`), at most `burst` at once.
fn quota(count: u64, period_seconds: u64, burst: u64) -> Quota {
    let to_cells = |n: u64| {
        NonZeroU32::new(u32::try_from(n).unwrap_or(u32::MAX).max(1)).unwrap_or(NonZeroU32::MIN)
    };
    let (count, burst) = (to_cells(count), to_cells(burst));
    let period = Duration::from_secs(period_seconds.max(1));
    let per_cell = period / count.get();
    let per_cell = if per_cell.is_zero() {
        Duration::from_nanos(1)
    } else {
        per_cell
    };
    Quota::with_period(per_cell).map_or(Quota::per_second(burst), |quota| quota.allow_burst(burst))
}

/// Whole seconds to wait, rounded up (at least 1).
pub fn seconds_up(wait: Duration) -> u64 {
    let whole = wait.as_secs();
    if wait.subsec_nanos() > 0 {
        whole + 1
    } else {
        whole.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free(count: u64, period_seconds: u64, burst: u64) -> Declared<'static> {
        Declared {
            name: "free",
            count,
            period_seconds,
            burst,
        }
    }

    #[test]
    fn the_count_plus_one_request_is_refused_per_key() {
        let limiters = Limiters::new(&[free(3, 60, 3)], None);
        let obligation = |key| Obligation { limit: "free", key };
        for expected_remaining in [2, 1, 0] {
            let verdict = limiters.check(&[obligation("alice")]).unwrap();
            assert!(verdict.allowed);
            assert_eq!(verdict.remaining, expected_remaining);
        }
        let refused = limiters.check(&[obligation("alice")]).unwrap();
        assert!(!refused.allowed);
        assert!(
            refused.retry_after >= 1 && refused.retry_after <= 20,
            "{refused:?}"
        );
        // Another key has its own budget.
        assert!(limiters.check(&[obligation("bob")]).unwrap().allowed);
    }

    #[test]
    fn unchanged_limits_keep_their_state_across_reloads() {
        let first = Limiters::new(&[free(1, 60, 1)], None);
        let obligation = [Obligation {
            limit: "free",
            key: "alice",
        }];
        assert!(first.check(&obligation).unwrap().allowed);
        let second = Limiters::new(&[free(1, 60, 1)], Some(&first));
        assert!(!second.check(&obligation).unwrap().allowed);
        let changed = Limiters::new(&[free(2, 60, 2)], Some(&second));
        assert!(changed.check(&obligation).unwrap().allowed);
        let reburst = Limiters::new(&[free(2, 60, 1)], Some(&changed));
        assert!(reburst.check(&obligation).unwrap().allowed);
    }

    #[test]
    fn a_window_of_seconds_with_a_burst_refills_evenly() {
        // 5 per 10 seconds with a burst of 2: two at once, then one every 2 seconds.
        let limiters = Limiters::new(&[free(5, 10, 2)], None);
        let obligation = [Obligation {
            limit: "free",
            key: "alice",
        }];
        assert!(limiters.check(&obligation).unwrap().allowed);
        assert!(limiters.check(&obligation).unwrap().allowed);
        let refused = limiters.check(&obligation).unwrap();
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, 2, "{refused:?}");
        assert_eq!(refused.count, 5);
    }
}
