//! Settings of the catalog's own work: the search-query embedding cache and
//! the background re-embed.

use std::time::Duration;

use super::reader::Reader;

/// Search and embedding upkeep.
#[derive(Debug, Clone)]
pub struct CatalogSettings {
    /// Memory for cached search-query embeddings, in bytes (`QUERY_CACHE_MB`); 0: no cache.
    pub query_cache_bytes: u64,
    /// How long a cached query embedding is used (`QUERY_CACHE_TTL_SECONDS`).
    pub query_cache_ttl: Duration,
    /// Whether this replica takes part in re-embedding, in the background,
    /// every org's items that lack a vector of the embedding model
    /// (`EMBEDDING_BACKFILL`; the database lets one replica at a time run it).
    pub embedding_backfill: bool,
}

impl CatalogSettings {
    pub(super) fn read(r: &mut Reader<'_>) -> Self {
        Self {
            query_cache_bytes: r.bounded("QUERY_CACHE_MB", 32u64, 0, 4096) * 1024 * 1024,
            query_cache_ttl: r.seconds("QUERY_CACHE_TTL_SECONDS", 3600, 1, 86_400),
            embedding_backfill: r.parse_or("EMBEDDING_BACKFILL", true),
        }
    }
}
