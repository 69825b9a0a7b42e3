//! A point in time by which a request must be answered. Created once per
//! request at the HTTP edge and passed down to every outbound call.

use std::time::Duration;

use tokio::time::Instant;

/// When the work for one request must be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(Instant);

impl Deadline {
    /// A deadline `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Self(Instant::now() + budget)
    }

    /// Time left, zero once passed.
    pub fn remaining(self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    /// Whether it has passed.
    pub fn is_expired(self) -> bool {
        self.remaining().is_zero()
    }

    /// The moment itself, for `tokio::time::timeout_at`.
    pub fn instant(self) -> Instant {
        self.0
    }

    /// The earlier of this deadline and one `budget` from now.
    #[must_use]
    pub fn at_most(self, budget: Duration) -> Self {
        Self(self.0.min(Instant::now() + budget))
    }

    /// This deadline moved `reserve` earlier, to keep time back for a step
    /// that must follow (a write after the call that produced its data).
    #[must_use]
    pub fn earlier_by(self, reserve: Duration) -> Self {
        Self(
            self.0
                .checked_sub(reserve)
                .unwrap_or_else(Instant::now)
                .min(self.0),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn earlier_by_keeps_time_back_and_never_goes_past_now() {
        let deadline = Deadline::after(Duration::from_secs(3));
        let reserved = deadline.earlier_by(Duration::from_millis(500));
        assert_eq!(reserved.remaining(), Duration::from_millis(2500));
        assert!(deadline.earlier_by(Duration::from_secs(10)).is_expired());
    }
}
