//! When to retry and how long to wait: exponential backoff with full jitter
//! (the `backoff` crate), a longer schedule for rate limits, and the server's
//! own retry hint honoured up to a cap.

#![expect(
    clippy::disallowed_types,
    reason = "the one place backoff schedules are built"
)]

use std::time::Duration;

use backoff::ExponentialBackoff;
use backoff::backoff::Backoff;
use backoff::exponential::ExponentialBackoffBuilder;

use super::Failure;

/// First wait after a connection error, timeout or 5xx.
// Short: retries of an interactive request are bounded by its deadline and
// the process's retry budget, not by long waits (the budget, not the backoff,
// is what protects a struggling dependency from a retry storm).
const TRANSIENT_INITIAL: Duration = Duration::from_millis(100);
/// Longest wait between attempts after a transient failure.
const TRANSIENT_MAX: Duration = Duration::from_secs(1);
/// First wait after a 429.
const RATE_LIMIT_INITIAL: Duration = Duration::from_secs(2);
/// Longest wait between attempts after a 429.
const RATE_LIMIT_MAX: Duration = Duration::from_secs(30);
/// A server's retry hint is honoured up to this long.
const MAX_HINT: Duration = Duration::from_secs(60);

/// How many attempts each kind of failure gets.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    max_attempts: u32,
    rate_limit_attempts: u32,
}

impl RetryPolicy {
    /// `max_attempts` for transient failures, `rate_limit_attempts` for 429s
    /// (both count the first attempt).
    pub fn new(max_attempts: u32, rate_limit_attempts: u32) -> Self {
        Self {
            max_attempts,
            rate_limit_attempts,
        }
    }

    /// A fresh schedule for one call.
    pub fn schedule(self) -> Schedule {
        Schedule {
            policy: self,
            attempts: 0,
            transient: exponential(TRANSIENT_INITIAL, TRANSIENT_MAX),
            rate_limit: exponential(RATE_LIMIT_INITIAL, RATE_LIMIT_MAX),
        }
    }
}

/// With a randomization factor of 1 the `backoff` crate draws each wait
/// uniformly from `[0, 2 × interval]`: full jitter, so clients that failed
/// together do not retry together.
fn exponential(initial: Duration, max: Duration) -> ExponentialBackoff {
    ExponentialBackoffBuilder::new()
        .with_initial_interval(initial)
        .with_multiplier(2.0)
        .with_randomization_factor(1.0)
        .with_max_interval(max)
        // Our deadline bounds the total; the crate's own clock must not.
        .with_max_elapsed_time(None)
        .build()
}

/// The retry state of one call.
#[derive(Debug)]
pub struct Schedule {
    policy: RetryPolicy,
    attempts: u32,
    transient: ExponentialBackoff,
    rate_limit: ExponentialBackoff,
}

impl Schedule {
    /// Attempts made so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Records a failed attempt; the wait before the next one, or `None`
    /// when the failure cannot pass or its attempts are used up.
    pub fn next_delay(&mut self, error: &impl Failure) -> Option<Duration> {
        self.attempts += 1;
        if !error.is_retryable() {
            return None;
        }
        let (limit, backoff) = if error.is_rate_limit() {
            (self.policy.rate_limit_attempts, &mut self.rate_limit)
        } else {
            (self.policy.max_attempts, &mut self.transient)
        };
        if self.attempts >= limit {
            return None;
        }
        let jittered = backoff.next_backoff().unwrap_or(TRANSIENT_MAX);
        let hint = error.retry_hint().map(|h| h.min(MAX_HINT));
        Some(hint.map_or(jittered, |hint| {
            hint.max(jittered.min(hint + TRANSIENT_INITIAL))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        retryable: bool,
        rate_limit: bool,
        hint: Option<Duration>,
    }

    impl std::fmt::Display for Fake {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("fake")
        }
    }

    impl Failure for Fake {
        fn is_retryable(&self) -> bool {
            self.retryable
        }
        fn is_dependency_failure(&self) -> bool {
            true
        }
        fn is_rate_limit(&self) -> bool {
            self.rate_limit
        }
        fn retry_hint(&self) -> Option<Duration> {
            self.hint
        }
        fn timed_out(_: Duration) -> Self {
            Self {
                retryable: true,
                rate_limit: false,
                hint: None,
            }
        }
    }

    const TRANSIENT: Fake = Fake {
        retryable: true,
        rate_limit: false,
        hint: None,
    };

    #[test]
    fn transient_failures_get_max_attempts() {
        let mut schedule = RetryPolicy::new(3, 5).schedule();
        assert!(schedule.next_delay(&TRANSIENT).is_some());
        assert!(schedule.next_delay(&TRANSIENT).is_some());
        assert!(schedule.next_delay(&TRANSIENT).is_none());
    }

    #[test]
    fn rate_limits_get_more_attempts_and_longer_waits() {
        let mut schedule = RetryPolicy::new(3, 5).schedule();
        let limited = Fake {
            retryable: true,
            rate_limit: true,
            hint: None,
        };
        let delays: Vec<_> = (0..5).map(|_| schedule.next_delay(&limited)).collect();
        assert_eq!(delays.iter().filter(|d| d.is_some()).count(), 4);
        assert!(delays.iter().flatten().all(|d| *d <= RATE_LIMIT_MAX * 2));
    }

    #[test]
    fn non_retryable_failures_stop_at_once() {
        let mut schedule = RetryPolicy::new(3, 5).schedule();
        let fatal = Fake {
            retryable: false,
            rate_limit: false,
            hint: None,
        };
        assert!(schedule.next_delay(&fatal).is_none());
    }

    #[test]
    fn a_server_hint_is_a_floor_and_is_capped() {
        let mut schedule = RetryPolicy::new(3, 5).schedule();
        let hinted = Fake {
            retryable: true,
            rate_limit: true,
            hint: Some(Duration::from_secs(2)),
        };
        for _ in 0..3 {
            let delay = schedule.next_delay(&hinted).unwrap();
            assert!(delay >= Duration::from_secs(2), "{delay:?}");
            assert!(
                delay <= Duration::from_secs(2) + TRANSIENT_INITIAL,
                "{delay:?}"
            );
        }
        let mut schedule = RetryPolicy::new(3, 5).schedule();
        let huge = Fake {
            retryable: true,
            rate_limit: true,
            hint: Some(Duration::from_secs(3600)),
        };
        assert!(schedule.next_delay(&huge).unwrap() <= MAX_HINT + TRANSIENT_INITIAL);
    }

    #[test]
    fn waits_are_jittered() {
        let delays: Vec<_> = (0..20)
            .map(|_| {
                RetryPolicy::new(3, 5)
                    .schedule()
                    .next_delay(&TRANSIENT)
                    .unwrap()
            })
            .collect();
        assert!(delays.iter().any(|d| *d != delays[0]), "{delays:?}");
        assert!(delays.iter().all(|d| *d <= TRANSIENT_INITIAL * 2));
    }
}
