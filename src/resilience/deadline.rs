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
}
