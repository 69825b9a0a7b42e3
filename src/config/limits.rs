//! Limits on batch work and the retry and circuit-breaker policy every
//! outbound call follows.

use std::time::Duration;

use super::reader::Reader;

/// Limits on batch enrichment.
#[derive(Debug, Clone)]
pub struct BatchSettings {
    /// Most product names in one batch request (`MAX_BATCH_SIZE`).
    pub max_batch_size: usize,
    /// Most items of one batch enriched at once (`BATCH_CONCURRENCY`).
    pub concurrency: usize,
    /// Most texts in one `/api/embeddings` request (`MAX_EMBED_TEXTS`).
    pub max_embed_texts: usize,
}

/// Retry and circuit-breaker policy for calls to Gemini and Supabase.
#[derive(Debug, Clone)]
pub struct ResilienceSettings {
    /// Consecutive failures that open a dependency's breaker (`CIRCUIT_BREAKER_FAIL_MAX`).
    pub circuit_breaker_fail_max: u32,
    /// How long an open breaker stays open (`CIRCUIT_BREAKER_TIMEOUT`, seconds).
    pub circuit_breaker_timeout: Duration,
    /// Most attempts for connection errors, timeouts and 5xx
    /// (`RETRY_MAX_ATTEMPTS`): a cap; the deadline and the budget usually stop first.
    pub retry_max_attempts: u32,
    /// Retries allowed as a share of first attempts, in percent (`RETRY_BUDGET_PERCENT`).
    pub retry_budget_percent: u32,
    /// Retries allowed per second on top of that share (`RETRY_BUDGET_MIN_PER_SECOND`).
    pub retry_budget_min_per_second: u32,
    /// Attempts for rate-limited (429) calls (`RETRY_RATE_LIMIT_ATTEMPTS`).
    pub retry_rate_limit_attempts: u32,
}

impl BatchSettings {
    pub(super) fn read(r: &mut Reader<'_>) -> Self {
        Self {
            max_batch_size: r.bounded("MAX_BATCH_SIZE", 20, 1, 10_000),
            concurrency: r.bounded("BATCH_CONCURRENCY", 20, 1, 10_000),
            max_embed_texts: r.bounded("MAX_EMBED_TEXTS", 1000, 1, 100_000),
        }
    }
}

impl ResilienceSettings {
    pub(super) fn read(r: &mut Reader<'_>) -> Self {
        Self {
            circuit_breaker_fail_max: r.bounded("CIRCUIT_BREAKER_FAIL_MAX", 5, 1, 1000),
            circuit_breaker_timeout: r.seconds("CIRCUIT_BREAKER_TIMEOUT", 60, 1, 3600),
            retry_max_attempts: r.bounded("RETRY_MAX_ATTEMPTS", 10, 1, 20),
            retry_budget_percent: r.bounded("RETRY_BUDGET_PERCENT", 50, 0, 1000),
            retry_budget_min_per_second: r.bounded("RETRY_BUDGET_MIN_PER_SECOND", 5, 0, 10_000),
            retry_rate_limit_attempts: r.bounded("RETRY_RATE_LIMIT_ATTEMPTS", 5, 1, 20),
        }
    }
}
