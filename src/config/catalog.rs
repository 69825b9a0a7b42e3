//! Settings of the catalog's own work: the search-query embedding cache,
//! the background re-embed and bulk imports.

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
    /// Largest import file in bytes (`IMPORT_MAX_BYTES`).
    pub import_max_bytes: u64,
    /// Most rows in one import file (`IMPORT_MAX_ROWS`).
    pub import_max_rows: u32,
    /// Whether this replica works on queued imports (`IMPORT_WORKER`); the
    /// database hands each job to one replica at a time.
    pub import_worker: bool,
}

impl CatalogSettings {
    pub(super) fn read(r: &mut Reader<'_>) -> Self {
        Self {
            query_cache_bytes: r.bounded("QUERY_CACHE_MB", 32u64, 0, 4096) * 1024 * 1024,
            query_cache_ttl: r.seconds("QUERY_CACHE_TTL_SECONDS", 3600, 1, 86_400),
            embedding_backfill: r.parse_or("EMBEDDING_BACKFILL", true),
            import_max_bytes: r.bounded("IMPORT_MAX_BYTES", 64 * 1024 * 1024, 1024, 1 << 30),
            import_max_rows: r.bounded("IMPORT_MAX_ROWS", 100_000, 1, 1_000_000),
            import_worker: r.parse_or("IMPORT_WORKER", true),
        }
    }
}
