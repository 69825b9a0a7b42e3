//! The policy's order of operations, driven by scripted failures on a
//! paused clock: what is retried, what trips the breaker, what the deadline
//! and the permits bound.

#![expect(
    clippy::disallowed_methods,
    reason = "the tests drive concurrent calls at the policy"
)]

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
