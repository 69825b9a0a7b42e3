//! The only place that retries, waits, trips breakers or limits concurrency
//! toward a dependency. Both the Gemini and the Supabase clients send every
//! call through a [`Dependency`]:
//!
//! ```text
//! deadline( retry( breaker( permit( attempt timeout( send ) ) ) ) )
//! ```
//!
//! - the request's [`Deadline`] bounds all attempts of all calls it makes;
//! - retries ([`retry`]) happen only for failures that can pass (connection
//!   errors, timeouts, per-minute 429, 5xx), with exponential backoff and
//!   full jitter, honouring the server's retry hint, never past the deadline;
//! - a circuit breaker ([`breaker`]) per dependency fails calls at once while
//!   the dependency is down, and lets one trial through after a cool-down;
//! - a semaphore per dependency caps calls in flight across all requests; a
//!   permit is held for one attempt only, never while waiting to retry.
//!
//! Admission on our own side lives here too: [`RateLimiter`] (a token
//! bucket per caller) and [`TenantShare`] (each org's share of Gemini).

pub mod breaker;
pub mod budget;
mod deadline;
pub mod rate_limit;
pub mod retry;
pub mod tenant_share;

pub use breaker::BreakerState;
pub use deadline::Deadline;
pub use rate_limit::RateLimiter;
pub use tenant_share::TenantShare;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::config::ResilienceSettings;
use breaker::Breaker;
use budget::RetryBudget;
use retry::RetryPolicy;

/// Least time left for an attempt to be started: less cannot succeed and
/// would only add load.
pub const MIN_ATTEMPT_BUDGET: Duration = Duration::from_millis(100);

/// How a client's error tells the resilience layer what happened.
pub trait Failure: std::fmt::Display {
    /// The same call may succeed later.
    fn is_retryable(&self) -> bool;
    /// The dependency itself is unhealthy (what the breaker counts).
    fn is_dependency_failure(&self) -> bool;
    /// A rate limit, which deserves longer waits and more attempts.
    fn is_rate_limit(&self) -> bool;
    /// How long the server asked us to wait, if it said.
    fn retry_hint(&self) -> Option<Duration>;
    /// The error for an attempt that ran out of time.
    fn timed_out(after: Duration) -> Self;
}

/// Why a call through a [`Dependency`] failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError<E> {
    /// The dependency's last answer, after any retries.
    #[error("{0}")]
    Upstream(E),
    /// The breaker is open: the call was not made.
    #[error("{dependency} circuit breaker is open")]
    CircuitOpen {
        /// Which dependency.
        dependency: &'static str,
        /// Time until the breaker lets a trial call through.
        retry_after: Duration,
    },
    /// The request's deadline passed before the call could complete.
    #[error("{dependency} call did not complete before the request deadline")]
    DeadlineExceeded {
        /// Which dependency.
        dependency: &'static str,
    },
    /// The call failed and the dependency's retry budget is spent: it fails
    /// fast rather than add to a retry storm.
    #[error("{dependency} retry budget spent; last failure: {error}")]
    RetryBudgetSpent {
        /// Which dependency.
        dependency: &'static str,
        /// The failure that was not retried.
        error: E,
    },
}

/// What a caller told "retry budget spent" should wait before trying again:
/// the budget's window slides a second at a time.
pub const RETRY_BUDGET_WAIT: Duration = Duration::from_secs(1);

/// One dependency's call policy: breaker, concurrency limit, retries, timeouts.
#[derive(Debug)]
pub struct Dependency {
    name: &'static str,
    breaker: Breaker,
    budget: RetryBudget,
    limiter: Arc<Semaphore>,
    retry: RetryPolicy,
    attempt_timeout: Duration,
}

impl Dependency {
    /// A policy for `name` with `max_concurrency` calls in flight at most.
    pub fn new(
        name: &'static str,
        settings: &ResilienceSettings,
        max_concurrency: usize,
        attempt_timeout: Duration,
    ) -> Self {
        Self {
            name,
            breaker: Breaker::new(
                name,
                settings.circuit_breaker_fail_max,
                settings.circuit_breaker_timeout,
            ),
            budget: RetryBudget::new(
                settings.retry_budget_percent,
                settings.retry_budget_min_per_second,
            ),
            limiter: Arc::new(Semaphore::new(max_concurrency)),
            retry: RetryPolicy::new(
                settings.retry_max_attempts,
                settings.retry_rate_limit_attempts,
            ),
            attempt_timeout,
        }
    }

    /// The dependency's name, as in logs and the readiness body.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The breaker's current state.
    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// Runs `attempt` under the full policy, retrying what can pass.
    ///
    /// # Errors
    /// [`CallError`]: the last upstream error, an open breaker, or the deadline.
    pub async fn call<T, E, F, Fut>(
        &self,
        deadline: Deadline,
        attempt: F,
    ) -> Result<T, CallError<E>>
    where
        E: Failure,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run(deadline, attempt, true).await
    }

    /// Runs `attempt` once within `deadline`, outside the breaker and the
    /// concurrency limit: for readiness probes, which must neither queue
    /// behind traffic nor be refused by a breaker that traffic opened, and
    /// whose outcome is not traffic's (it is not reported to the breaker).
    ///
    /// # Errors
    /// [`CallError`]: the upstream error, or the deadline.
    pub async fn probe<T, E, Fut>(
        &self,
        deadline: Deadline,
        attempt: Fut,
    ) -> Result<T, CallError<E>>
    where
        E: Failure,
        Fut: Future<Output = Result<T, E>>,
    {
        match tokio::time::timeout_at(deadline.instant(), attempt).await {
            Ok(result) => result.map_err(CallError::Upstream),
            Err(_) => Err(CallError::DeadlineExceeded {
                dependency: self.name,
            }),
        }
    }

    /// Runs `attempt` once under the breaker, limit and deadline, without
    /// retrying: for writes that must not run twice when an answer is lost.
    ///
    /// # Errors
    /// [`CallError`]: the upstream error, an open breaker, or the deadline.
    pub async fn call_once<T, E, F, Fut>(
        &self,
        deadline: Deadline,
        attempt: F,
    ) -> Result<T, CallError<E>>
    where
        E: Failure,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run(deadline, attempt, false).await
    }

    async fn run<T, E, F, Fut>(
        &self,
        deadline: Deadline,
        mut attempt: F,
        may_retry: bool,
    ) -> Result<T, CallError<E>>
    where
        E: Failure,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut schedule = self.retry.schedule();
        self.budget.record_call();
        loop {
            let error = match self.attempt(deadline, &mut attempt).await {
                Ok(value) => return Ok(value),
                Err(AttemptError::Call(error)) => return Err(error),
                Err(AttemptError::Failed(error)) => error,
            };
            let delay = match schedule.next_delay(&error) {
                Some(delay) if may_retry => delay,
                _ => return Err(CallError::Upstream(error)),
            };
            // Room for the wait and a useful attempt after it, or give up now.
            if deadline.remaining() <= delay + MIN_ATTEMPT_BUDGET {
                tracing::warn!(dependency = self.name, error = %error, "not retrying: the wait would pass the request deadline");
                return Err(CallError::Upstream(error));
            }
            if !self.budget.try_retry() {
                tracing::warn!(dependency = self.name, error = %error, "not retrying: the retry budget is spent");
                return Err(CallError::RetryBudgetSpent {
                    dependency: self.name,
                    error,
                });
            }
            tracing::warn!(
                dependency = self.name,
                attempt = schedule.attempts(),
                delay_ms = delay.as_millis() as u64,
                error = %error,
                "retrying after failure"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// One attempt: breaker check, a permit, the call under its timeout,
    /// and the outcome reported to the breaker.
    async fn attempt<T, E, F, Fut>(
        &self,
        deadline: Deadline,
        attempt: &mut F,
    ) -> Result<T, AttemptError<E>>
    where
        E: Failure,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let expired = || {
            AttemptError::Call(CallError::DeadlineExceeded {
                dependency: self.name,
            })
        };
        if deadline.remaining() < MIN_ATTEMPT_BUDGET {
            return Err(expired());
        }
        let trial = self.breaker.permit().map_err(|retry_after| {
            AttemptError::Call(CallError::CircuitOpen {
                dependency: self.name,
                retry_after,
            })
        })?;
        let permit = tokio::time::timeout_at(deadline.instant(), self.limiter.acquire())
            .await
            .map_err(|_| expired())?
            .map_err(|_| expired())?;
        // Waiting for the slot may have used the budget up. Dropping `trial`
        // unreported counts neither way: our deadline is not Gemini's fault.
        let remaining = deadline.remaining();
        if remaining < MIN_ATTEMPT_BUDGET {
            return Err(expired());
        }
        let cut_short = remaining < self.attempt_timeout;
        let limit = self.attempt_timeout.min(remaining);
        let outcome = tokio::time::timeout(limit, attempt()).await;
        drop(permit);
        match outcome {
            Ok(Ok(value)) => {
                trial.succeeded();
                Ok(value)
            }
            Ok(Err(error)) => {
                if error.is_dependency_failure() {
                    trial.failed();
                } else {
                    // The dependency answered; our request was the problem.
                    trial.succeeded();
                }
                Err(AttemptError::Failed(error))
            }
            // Cut short by the request's deadline, not the attempt timeout:
            // the dependency was not given its full time, so it is not
            // blamed (a few queued requests must not open the breaker for
            // every tenant while the dependency is healthy).
            Err(_) if cut_short => Err(expired()),
            Err(_) => {
                trial.failed();
                Err(AttemptError::Failed(E::timed_out(limit)))
            }
        }
    }
}

enum AttemptError<E> {
    /// Stop now with this answer.
    Call(CallError<E>),
    /// The attempt failed; the retry policy decides what next.
    Failed(E),
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

    use super::*;

    /// A dependency's error as the resilience layer sees it.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Fake {
        Unavailable,
        RateLimited(Duration),
        BadRequest,
        TimedOut,
    }

    impl std::fmt::Display for Fake {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{self:?}")
        }
    }

    impl Failure for Fake {
        fn is_retryable(&self) -> bool {
            !matches!(self, Self::BadRequest)
        }
        fn is_dependency_failure(&self) -> bool {
            matches!(self, Self::Unavailable | Self::TimedOut)
        }
        fn is_rate_limit(&self) -> bool {
            matches!(self, Self::RateLimited(_))
        }
        fn retry_hint(&self) -> Option<Duration> {
            match self {
                Self::RateLimited(hint) => Some(*hint),
                _ => None,
            }
        }
        fn timed_out(_: Duration) -> Self {
            Self::TimedOut
        }
    }

    fn dependency(fail_max: u32, max_attempts: u32, concurrency: usize) -> Dependency {
        dependency_with_budget(fail_max, max_attempts, concurrency, 50, 5)
    }

    fn dependency_with_budget(
        fail_max: u32,
        max_attempts: u32,
        concurrency: usize,
        budget_percent: u32,
        budget_floor: u32,
    ) -> Dependency {
        let settings = ResilienceSettings {
            circuit_breaker_fail_max: fail_max,
            circuit_breaker_timeout: Duration::from_secs(60),
            retry_max_attempts: max_attempts,
            retry_rate_limit_attempts: 5,
            retry_budget_percent: budget_percent,
            retry_budget_min_per_second: budget_floor,
        };
        Dependency::new("fake", &settings, concurrency, Duration::from_secs(5))
    }

    #[tokio::test(start_paused = true)]
    async fn a_spent_retry_budget_fails_fast_instead_of_retrying() {
        // No floor, 50%: one call buys half a retry, enough for one.
        let dep = dependency_with_budget(100, 20, 4, 50, 0);
        let deadline = Deadline::after(Duration::from_secs(60));
        let (result, attempts) = run_script(&dep, deadline, &[Err(Fake::Unavailable)]).await;
        assert!(
            matches!(result, Err(CallError::RetryBudgetSpent { .. })),
            "{result:?}"
        );
        assert_eq!(attempts, 2);
        // Twenty calls that succeed at once earn ten retries between them.
        for _ in 0..20 {
            run_script(&dep, deadline, &[Ok(1)]).await.0.unwrap();
        }
        let (result, attempts) = run_script(&dep, deadline, &[Err(Fake::Unavailable)]).await;
        assert!(matches!(result, Err(CallError::RetryBudgetSpent { .. })));
        // 22 calls buy 11 retries, one already spent; the backoff waits
        // (seconds) slide some of the calls out of the 10 s window meanwhile.
        assert!((3..=11).contains(&attempts), "{attempts} attempts");
    }

    #[tokio::test(start_paused = true)]
    async fn retries_go_on_while_the_deadline_leaves_room() {
        // 30% failures do not exhaust ten attempts; the deadline bounds them.
        let dep = dependency(100, 10, 4);
        let script = [
            Err(Fake::Unavailable),
            Err(Fake::Unavailable),
            Err(Fake::Unavailable),
            Err(Fake::Unavailable),
            Ok(5),
        ];
        let (result, attempts) =
            run_script(&dep, Deadline::after(Duration::from_secs(60)), &script).await;
        assert_eq!(result.ok(), Some(5));
        assert_eq!(attempts, 5);
        let (result, attempts) =
            run_script(&dep, Deadline::after(Duration::from_millis(300)), &script).await;
        assert!(matches!(result, Err(CallError::Upstream(_))));
        assert!(attempts < 5, "{attempts} attempts in 300 ms");
    }

    /// Runs a call whose attempts answer from `script` in turn (the last
    /// answer repeats), and counts the attempts made.
    async fn run_script(
        dependency: &Dependency,
        deadline: Deadline,
        script: &[Result<u32, Fake>],
    ) -> (Result<u32, CallError<Fake>>, u32) {
        let attempts = AtomicU32::new(0);
        let result = dependency
            .call(deadline, || {
                let n = attempts.fetch_add(1, Ordering::SeqCst) as usize;
                let answer = script[n.min(script.len() - 1)];
                async move { answer }
            })
            .await;
        (result, attempts.load(Ordering::SeqCst))
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_until_success() {
        let dep = dependency(10, 3, 4);
        let script = [Err(Fake::Unavailable), Err(Fake::Unavailable), Ok(7)];
        let (result, attempts) =
            run_script(&dep, Deadline::after(Duration::from_secs(60)), &script).await;
        assert_eq!(result.ok(), Some(7));
        assert_eq!(attempts, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_stop_after_max_attempts() {
        let dep = dependency(10, 3, 4);
        let (result, attempts) = run_script(
            &dep,
            Deadline::after(Duration::from_secs(60)),
            &[Err(Fake::Unavailable)],
        )
        .await;
        assert!(matches!(
            result,
            Err(CallError::Upstream(Fake::Unavailable))
        ));
        assert_eq!(attempts, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn client_errors_are_not_retried() {
        let dep = dependency(10, 3, 4);
        let (result, attempts) = run_script(
            &dep,
            Deadline::after(Duration::from_secs(60)),
            &[Err(Fake::BadRequest), Ok(1)],
        )
        .await;
        assert!(matches!(result, Err(CallError::Upstream(Fake::BadRequest))));
        assert_eq!(attempts, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_limit_hint_is_waited_out() {
        let dep = dependency(10, 3, 4);
        let start = tokio::time::Instant::now();
        let script = [Err(Fake::RateLimited(Duration::from_secs(2))), Ok(1)];
        let (result, attempts) =
            run_script(&dep, Deadline::after(Duration::from_secs(60)), &script).await;
        assert_eq!(result.ok(), Some(1));
        assert_eq!(attempts, 2);
        assert!(
            start.elapsed() >= Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_retry_starts_that_would_end_after_the_deadline() {
        let dep = dependency(10, 3, 4);
        let start = tokio::time::Instant::now();
        let script = [Err(Fake::RateLimited(Duration::from_secs(10))), Ok(1)];
        let (result, attempts) =
            run_script(&dep, Deadline::after(Duration::from_secs(3)), &script).await;
        assert!(matches!(
            result,
            Err(CallError::Upstream(Fake::RateLimited(_)))
        ));
        assert_eq!(attempts, 1);
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_dependency_hits_the_attempt_timeout_and_the_deadline_holds() {
        let dep = dependency(10, 3, 4);
        let start = tokio::time::Instant::now();
        let attempts = AtomicU32::new(0);
        // 5 s per attempt, 3 attempts allowed, but only 8 s of deadline.
        let result: Result<(), _> = dep
            .call(Deadline::after(Duration::from_secs(8)), || {
                attempts.fetch_add(1, Ordering::SeqCst);
                std::future::pending::<Result<(), Fake>>()
            })
            .await;
        let elapsed = start.elapsed();
        assert!(elapsed <= Duration::from_secs(8), "{elapsed:?}");
        assert!(elapsed >= Duration::from_secs(5), "{elapsed:?}");
        assert!(matches!(
            result,
            Err(CallError::DeadlineExceeded { .. } | CallError::Upstream(Fake::TimedOut))
        ));
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_breaker_fails_fast_without_calling() {
        let dep = dependency(2, 1, 4);
        let deadline = Deadline::after(Duration::from_secs(60));
        for _ in 0..2 {
            let (result, _) = run_script(&dep, deadline, &[Err(Fake::Unavailable)]).await;
            assert!(matches!(result, Err(CallError::Upstream(_))));
        }
        assert_eq!(dep.breaker_state(), BreakerState::Open);
        let (result, attempts) = run_script(&dep, deadline, &[Ok(1)]).await;
        assert_eq!(attempts, 0);
        match result {
            Err(CallError::CircuitOpen { retry_after, .. }) => {
                assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(60));
            }
            other => panic!("expected an open breaker, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn running_out_of_the_request_deadline_is_not_the_dependencys_failure() {
        // Breaker opens after 2 failures; attempts may take 5 s; each call has 1 s.
        let dep = dependency(2, 3, 4);
        for _ in 0..5 {
            let result: Result<(), _> = dep
                .call(Deadline::after(Duration::from_secs(1)), || {
                    std::future::pending::<Result<(), Fake>>()
                })
                .await;
            assert!(matches!(result, Err(CallError::DeadlineExceeded { .. })));
        }
        assert_eq!(dep.breaker_state(), BreakerState::Closed);
        // A real attempt timeout still counts.
        for _ in 0..2 {
            let _: Result<(), _> = dep
                .call(Deadline::after(Duration::from_secs(60)), || {
                    std::future::pending::<Result<(), Fake>>()
                })
                .await;
        }
        assert_eq!(dep.breaker_state(), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_for_a_slot_past_the_deadline_neither_calls_nor_counts() {
        let dep = Arc::new(dependency(1, 1, 1));
        let holder = {
            let dep = Arc::clone(&dep);
            tokio::spawn(async move {
                dep.call(Deadline::after(Duration::from_secs(4)), || async {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    Ok::<_, Fake>(())
                })
                .await
            })
        };
        tokio::task::yield_now().await;
        let called = AtomicU32::new(0);
        let queued: Result<(), _> = dep
            .call(Deadline::after(Duration::from_secs(2)), || {
                called.fetch_add(1, Ordering::SeqCst);
                async { Ok::<_, Fake>(()) }
            })
            .await;
        assert!(matches!(queued, Err(CallError::DeadlineExceeded { .. })));
        assert_eq!(called.load(Ordering::SeqCst), 0);
        assert!(matches!(holder.await, Ok(Ok(()))));
        assert_eq!(dep.breaker_state(), BreakerState::Closed);
        // Too little time left: not started at all.
        let (result, attempts) =
            run_script(&dep, Deadline::after(Duration::from_millis(50)), &[Ok(1)]).await;
        assert!(matches!(result, Err(CallError::DeadlineExceeded { .. })));
        assert_eq!(attempts, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn client_errors_do_not_open_the_breaker() {
        let dep = dependency(2, 1, 4);
        let deadline = Deadline::after(Duration::from_secs(60));
        for _ in 0..5 {
            run_script(&dep, deadline, &[Err(Fake::BadRequest)])
                .await
                .0
                .ok();
        }
        assert_eq!(dep.breaker_state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn calls_in_flight_never_exceed_the_limit() {
        let dep = Arc::new(dependency(10, 1, 3));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let high_water = Arc::new(AtomicUsize::new(0));
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let (dep, in_flight, high_water) = (dep.clone(), in_flight.clone(), high_water.clone());
            calls.spawn(async move {
                dep.call(Deadline::after(Duration::from_secs(60)), || {
                    let (in_flight, high_water) = (in_flight.clone(), high_water.clone());
                    async move {
                        let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        high_water.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        Ok::<_, Fake>(())
                    }
                })
                .await
            });
        }
        while let Some(done) = calls.join_next().await {
            assert!(matches!(done, Ok(Ok(()))));
        }
        assert_eq!(high_water.load(Ordering::SeqCst), 3);
    }
}
