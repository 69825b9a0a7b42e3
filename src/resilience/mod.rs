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
    /// How long the server asked us to wait, if it said (few servers do).
    fn retry_hint(&self) -> Option<Duration> {
        None
    }
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
mod tests;
