//! A retry budget per dependency, as Finagle and Envoy keep one: over a
//! sliding window, retries may add at most `ratio` of the calls' first
//! attempts, plus a small floor per second so a quiet process can still
//! retry its occasional failure. When a dependency fails a lot, retries stop
//! multiplying its load (a retry storm) and callers fail fast instead; when
//! it fails a little, every failure is retried until the request's deadline.

use std::sync::{Mutex, PoisonError};

use tokio::time::Instant;

/// The window's length, in one-second slots.
const WINDOW_SECONDS: usize = 10;

/// First attempts and retries of the last `WINDOW_SECONDS` seconds.
#[derive(Debug)]
pub struct RetryBudget {
    ratio: f64,
    floor_per_second: f64,
    window: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    /// The second (since `origin`) the last slot counts.
    newest: u64,
    /// `(first attempts, retries)` per second, oldest first.
    slots: [(u64, u64); WINDOW_SECONDS],
    origin: Instant,
}

impl RetryBudget {
    /// Retries up to `percent`% of first attempts plus `floor_per_second`
    /// per second, over a 10 s window.
    pub fn new(percent: u32, floor_per_second: u32) -> Self {
        Self {
            ratio: f64::from(percent) / 100.0,
            floor_per_second: f64::from(floor_per_second),
            window: Mutex::new(Window {
                newest: 0,
                slots: [(0, 0); WINDOW_SECONDS],
                origin: Instant::now(),
            }),
        }
    }

    /// Counts a call's first attempt.
    pub fn record_call(&self) {
        self.with_window(|slot| slot.0 += 1, |_| ());
    }

    /// Takes one retry from the budget if it has one.
    pub fn try_retry(&self) -> bool {
        let (ratio, floor) = (self.ratio, self.floor_per_second);
        let mut allowed = false;
        self.with_window(
            |_| (),
            |window| {
                let (calls, retries) = window
                    .slots
                    .iter()
                    .fold((0, 0), |(c, r), (sc, sr)| (c + sc, r + sr));
                let limit = ratio * calls as f64 + floor * WINDOW_SECONDS as f64;
                if (retries as f64) < limit {
                    if let Some(last) = window.slots.last_mut() {
                        last.1 += 1;
                    }
                    allowed = true;
                }
            },
        );
        allowed
    }

    /// Slides the window to now, then applies `current` to this second's
    /// slot and `whole` to the window.
    fn with_window(&self, current: impl FnOnce(&mut (u64, u64)), whole: impl FnOnce(&mut Window)) {
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        let now = window.origin.elapsed().as_secs();
        if now > window.newest {
            let shift = (now - window.newest).min(WINDOW_SECONDS as u64) as usize;
            window.slots.rotate_left(shift);
            for slot in &mut window.slots[WINDOW_SECONDS - shift..] {
                *slot = (0, 0);
            }
            window.newest = now;
        }
        if let Some(last) = window.slots.last_mut() {
            current(last);
        }
        whole(&mut window);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retries_are_a_share_of_calls_plus_a_floor() {
        let budget = RetryBudget::new(50, 1);
        // Floor only: 1 per second over 10 s.
        let granted = (0..100).filter(|_| budget.try_retry()).count();
        assert_eq!(granted, 10);
        // 100 calls buy 50 more.
        for _ in 0..100 {
            budget.record_call();
        }
        let granted = (0..100).filter(|_| budget.try_retry()).count();
        assert_eq!(granted, 50);
    }

    #[tokio::test(start_paused = true)]
    async fn the_window_slides() {
        let budget = RetryBudget::new(0, 1);
        assert_eq!((0..20).filter(|_| budget.try_retry()).count(), 10);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(
            (0..20).filter(|_| budget.try_retry()).count(),
            0,
            "spent retries are still in the window"
        );
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(
            (0..20).filter(|_| budget.try_retry()).count(),
            10,
            "they slid out"
        );
    }
}
