//! A circuit breaker per dependency, built on `failsafe`'s state machine with
//! a consecutive-failures policy: it opens after `CIRCUIT_BREAKER_FAIL_MAX`
//! dependency failures in a row, stays open `CIRCUIT_BREAKER_TIMEOUT`, then
//! lets one trial call through; the trial's outcome closes or reopens it.
//!
//! `failsafe` lets every call through while half-open; we admit one trial at
//! a time so a recovering dependency is not hit by everything queued up.
//! Transitions are logged, and the time left while open is tracked so callers
//! can send an honest `Retry-After`.

#![expect(
    clippy::disallowed_types,
    reason = "the one place a circuit breaker is built"
)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use failsafe::backoff::Constant;
use failsafe::failure_policy::ConsecutiveFailures;
use failsafe::{Config, Instrument, StateMachine};

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls flow.
    Closed,
    /// Calls fail at once.
    Open,
    /// The cool-down passed; a trial call decides.
    HalfOpen,
}

/// One dependency's breaker.
pub struct Breaker {
    machine: StateMachine<ConsecutiveFailures<Constant>, Events>,
    events: Events,
    open_for: Duration,
    trial_in_flight: Arc<AtomicBool>,
}

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker")
            .field("dependency", &self.events.0.dependency)
            .field("state", &self.state())
            .finish()
    }
}

impl Breaker {
    /// Opens after `fail_max` consecutive failures, for `open_for`.
    pub fn new(dependency: &'static str, fail_max: u32, open_for: Duration) -> Self {
        let events = Events(Arc::new(EventLog {
            dependency,
            state: Mutex::new((BreakerState::Closed, Instant::now())),
        }));
        let policy = failsafe::failure_policy::consecutive_failures(
            fail_max,
            failsafe::backoff::constant(open_for),
        );
        let machine = Config::new()
            .failure_policy(policy)
            .instrument(events.clone())
            .build();
        Self {
            machine,
            events,
            open_for,
            trial_in_flight: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        self.events.current().0
    }

    /// Permission for one attempt, or the time until the breaker will allow one.
    pub fn permit(&self) -> Result<Attempt, Duration> {
        if !self.machine.is_call_permitted() {
            return Err(self.time_left());
        }
        let trial = self.state() == BreakerState::HalfOpen;
        if trial && self.trial_in_flight.swap(true, Ordering::AcqRel) {
            // Another call is already the trial; wait for its verdict.
            return Err(Duration::from_secs(1));
        }
        Ok(Attempt {
            machine: self.machine.clone(),
            trial: trial.then(|| self.trial_in_flight.clone()),
        })
    }

    fn time_left(&self) -> Duration {
        match self.events.current() {
            (BreakerState::Open, since) => self.open_for.saturating_sub(since.elapsed()),
            _ => Duration::ZERO,
        }
    }
}

/// One permitted attempt; report how it went. Dropping it unreported (the
/// caller gave up mid-call) counts neither way and frees the trial slot.
pub struct Attempt {
    machine: StateMachine<ConsecutiveFailures<Constant>, Events>,
    trial: Option<Arc<AtomicBool>>,
}

impl Attempt {
    /// The dependency answered properly.
    pub fn succeeded(self) {
        self.machine.on_success();
    }

    /// The dependency failed.
    pub fn failed(self) {
        self.machine.on_error();
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if let Some(flag) = &self.trial {
            flag.store(false, Ordering::Release);
        }
    }
}

/// Receives the state machine's transitions: logs them and remembers the
/// current state and since when.
#[derive(Clone)]
struct Events(Arc<EventLog>);

struct EventLog {
    dependency: &'static str,
    state: Mutex<(BreakerState, Instant)>,
}

impl Events {
    fn current(&self) -> (BreakerState, Instant) {
        *self.0.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, state: BreakerState) {
        *self.0.state.lock().unwrap_or_else(PoisonError::into_inner) = (state, Instant::now());
    }
}

impl Instrument for Events {
    fn on_call_rejected(&self) {
        tracing::debug!(
            dependency = self.0.dependency,
            "circuit open: call rejected"
        );
    }

    fn on_open(&self) {
        self.set(BreakerState::Open);
        tracing::error!(dependency = self.0.dependency, "circuit breaker opened");
    }

    fn on_half_open(&self) {
        self.set(BreakerState::HalfOpen);
        tracing::warn!(
            dependency = self.0.dependency,
            "circuit breaker half-open: letting a trial call through"
        );
    }

    fn on_closed(&self) {
        let was = self.current().0;
        self.set(BreakerState::Closed);
        if was != BreakerState::Closed {
            tracing::info!(dependency = self.0.dependency, "circuit breaker closed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_and_rejects_with_the_time_left() {
        let breaker = Breaker::new("test", 3, Duration::from_secs(60));
        for _ in 0..2 {
            breaker.permit().unwrap().failed();
        }
        // A success in between resets the count.
        breaker.permit().unwrap().succeeded();
        for _ in 0..3 {
            assert_eq!(breaker.state(), BreakerState::Closed);
            breaker.permit().unwrap().failed();
        }
        assert_eq!(breaker.state(), BreakerState::Open);
        let wait = breaker.permit().err().unwrap();
        assert!(wait > Duration::from_secs(59) && wait <= Duration::from_secs(60));
    }

    #[test]
    fn after_the_cool_down_one_trial_decides() {
        let breaker = Breaker::new("test", 1, Duration::from_millis(20));
        breaker.permit().unwrap().failed();
        assert!(breaker.permit().is_err());
        std::thread::sleep(Duration::from_millis(30));

        let trial = breaker.permit().unwrap();
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert!(breaker.permit().is_err(), "only one trial at a time");
        trial.succeeded();
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert!(breaker.permit().is_ok());
    }

    #[test]
    fn a_failed_trial_reopens() {
        let breaker = Breaker::new("test", 1, Duration::from_millis(20));
        breaker.permit().unwrap().failed();
        std::thread::sleep(Duration::from_millis(30));
        breaker.permit().unwrap().failed();
        assert_eq!(breaker.state(), BreakerState::Open);
    }
}
