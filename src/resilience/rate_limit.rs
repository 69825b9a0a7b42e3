//! Per-caller rate limiting in process: a token bucket per user id, checked
//! right after the access token is verified (so before the membership look-up
//! and any Gemini call). No shared store: with R replicas behind a load
//! balancer each enforces its own share, as the breakers do.
//!
//! Memory is bounded whatever the number of callers: at most `MAX_CALLERS`
//! buckets are kept. A bucket that has refilled completely is the same as no
//! bucket, so those are dropped first when room is needed.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

/// Callers tracked at once (about 48 bytes each).
pub const MAX_CALLERS: usize = 100_000;

/// A token bucket per caller.
#[derive(Debug)]
pub struct RateLimiter {
    /// Tokens added per second.
    rate: f64,
    /// Bucket size: the burst a caller may send at once.
    burst: f64,
    max_callers: usize,
    buckets: Mutex<HashMap<Uuid, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    /// `per_minute` requests per minute on average, bursts of `burst`.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        Self::with_capacity(per_minute, burst, MAX_CALLERS)
    }

    fn with_capacity(per_minute: u32, burst: u32, max_callers: usize) -> Self {
        Self {
            rate: f64::from(per_minute) / 60.0,
            burst: f64::from(burst.max(1)),
            max_callers: max_callers.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `caller`, or says how long until one is available.
    ///
    /// # Errors
    /// The wait until the caller may try again.
    pub fn check(&self, caller: Uuid) -> Result<(), Duration> {
        self.charge(caller, 1)
    }

    /// Takes `cost` tokens for `caller` (a request's Gemini work: one per
    /// call it may cause), or says how long until they are available. A cost
    /// above the burst is charged as the burst, so a large request is slow
    /// to repeat but never impossible.
    ///
    /// # Errors
    /// The wait until the caller may try again.
    pub fn charge(&self, caller: Uuid, cost: u32) -> Result<(), Duration> {
        let cost = f64::from(cost).min(self.burst);
        if cost <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if !buckets.contains_key(&caller) && buckets.len() >= self.max_callers {
            self.make_room(&mut buckets, now);
        }
        let bucket = buckets.entry(caller).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        bucket.tokens = self.refilled(bucket, now);
        bucket.updated = now;
        if bucket.tokens >= cost {
            bucket.tokens -= cost;
            Ok(())
        } else {
            let missing = cost - bucket.tokens;
            Err(Duration::from_secs_f64(missing / self.rate))
        }
    }

    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        (bucket.tokens + elapsed * self.rate).min(self.burst)
    }

    /// Drops buckets that have refilled (no loss: a full bucket is a new
    /// one). If every caller is mid-burst, drops the fullest tenth, so the
    /// scan is paid once per many new callers rather than once each.
    fn make_room(&self, buckets: &mut HashMap<Uuid, Bucket>, now: Instant) {
        buckets.retain(|_, bucket| self.refilled(bucket, now) < self.burst);
        if buckets.len() < self.max_callers {
            return;
        }
        let mut by_tokens: Vec<(f64, Uuid)> = buckets
            .iter()
            .map(|(id, bucket)| (self.refilled(bucket, now), *id))
            .collect();
        let drop = (self.max_callers / 10).max(1).min(by_tokens.len());
        let split = by_tokens.len() - drop;
        by_tokens.select_nth_unstable_by(split, |a, b| a.0.total_cmp(&b.0));
        for (_, id) in &by_tokens[split..] {
            buckets.remove(id);
        }
    }

    /// Callers tracked now.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_is_allowed_then_the_rate_holds() {
        let limiter = RateLimiter::new(60, 5);
        let caller = Uuid::new_v4();
        for _ in 0..5 {
            assert!(limiter.check(caller).is_ok());
        }
        let wait = limiter.check(caller).unwrap_err();
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(limiter.check(caller).is_ok());
        assert!(limiter.check(caller).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn callers_do_not_share_buckets() {
        let limiter = RateLimiter::new(60, 2);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(limiter.check(a).is_ok());
        assert!(limiter.check(a).is_ok());
        assert!(limiter.check(a).is_err());
        assert!(limiter.check(b).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn memory_stays_bounded_and_busy_callers_keep_their_limit() {
        let limiter = RateLimiter::with_capacity(60, 3, 100);
        let busy = Uuid::new_v4();
        for _ in 0..3 {
            assert!(limiter.check(busy).is_ok());
        }
        for _ in 0..10_000 {
            let _ = limiter.check(Uuid::new_v4());
            assert!(limiter.tracked() <= 100);
        }
        // The emptied bucket was never the one dropped.
        assert!(limiter.check(busy).is_err());
    }
}
