//! Search queries' embeddings, cached in process. A catalog's searches
//! repeat ("laptop", "standing desk"), and a query's vector depends only on
//! the model, the dimension, the task type and the text: a cached search
//! costs no Gemini call, so it also keeps working while Gemini is down or its
//! breaker is open.
//!
//! Each org has its own entries: a hit shared across orgs would tell a member
//! of one that someone in another searched that text lately (a search that
//! answers while Gemini is down is such a tell). An org's first search of a
//! text costs one Gemini call even when another org made it.
//!
//! Bounded by memory (each entry weighs its vector and key) and by age
//! (`QUERY_CACHE_TTL_SECONDS`); concurrent misses of one query make one
//! Gemini call that all of them wait for (moka's `try_get_with`). Failures
//! are not cached.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use uuid::Uuid;

use crate::domain::TaskType;
use crate::resilience::Deadline;
use crate::services::embeddings::{EmbeddingError, EmbeddingService};

/// Bytes an entry costs beyond its vector and key text (moka's own
/// bookkeeping, the `Arc`, the hash-table slot), as an estimate.
const ENTRY_OVERHEAD: u32 = 128;

/// What readiness reports about the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryCacheStatus {
    /// Queries held.
    pub entries: u64,
    /// Their weight in bytes, about what they take in memory.
    pub bytes: u64,
}

/// Query embeddings by org, model, dimension, task type and normalised text.
#[derive(Debug, Clone)]
pub struct QueryEmbeddingCache {
    cache: Cache<String, Arc<Vec<f32>>>,
    embeddings: Arc<EmbeddingService>,
    dimension: u32,
}

impl QueryEmbeddingCache {
    /// A cache of at most `max_bytes`, entries living `ttl`, filled through
    /// `embeddings`.
    pub fn new(
        embeddings: Arc<EmbeddingService>,
        dimension: u32,
        max_bytes: u64,
        ttl: Duration,
    ) -> Self {
        let cache = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &String, vector: &Arc<Vec<f32>>| {
                let bytes = key.len() + vector.len() * std::mem::size_of::<f32>();
                u32::try_from(bytes)
                    .unwrap_or(u32::MAX)
                    .saturating_add(ENTRY_OVERHEAD)
            })
            .time_to_live(ttl)
            .build();
        Self {
            cache,
            embeddings,
            dimension,
        }
    }

    /// The query's vector: from the cache, or embedded once for every
    /// concurrent caller that asked for the same query.
    ///
    /// # Errors
    /// The embedding's error when the query was not cached.
    pub async fn embed_query(
        &self,
        query: &str,
        org: Uuid,
        deadline: Deadline,
    ) -> Result<Arc<Vec<f32>>, EmbeddingError> {
        let text = normalise(query);
        let key = format!(
            "{org}\u{1f}{}\u{1f}{}\u{1f}{:?}\u{1f}{text}",
            self.embeddings.model_version(),
            self.dimension,
            TaskType::RetrievalQuery
        );
        let embeddings = Arc::clone(&self.embeddings);
        let entry = self
            .cache
            .entry(key)
            .or_try_insert_with(async move {
                let mut vectors = embeddings
                    .embed(vec![text], TaskType::RetrievalQuery, org, deadline)
                    .await?;
                Ok::<_, EmbeddingError>(Arc::new(vectors.pop().unwrap_or_default()))
            })
            .await
            .map_err(Arc::unwrap_or_clone)?;
        // Fresh: this call embedded it; otherwise it was cached, or another
        // caller's embedding of the same query was awaited.
        tracing::debug!(hit = !entry.is_fresh(), "query embedding cache");
        Ok(entry.into_value())
    }

    /// Size, for readiness: totals over every org, nothing about one.
    pub fn status(&self) -> QueryCacheStatus {
        QueryCacheStatus {
            entries: self.cache.entry_count(),
            bytes: self.cache.weighted_size(),
        }
    }
}

/// The text as embedded and as keyed: trimmed, runs of whitespace as one
/// space (Gemini does not tell them apart; the cache should not either).
fn normalise(query: &str) -> String {
    query.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_does_not_make_a_new_query() {
        assert_eq!(normalise("  standing\tdesk \n"), "standing desk");
        assert_ne!(
            normalise("Desk"),
            normalise("desk"),
            "case is kept: it can change the vector"
        );
    }
}
